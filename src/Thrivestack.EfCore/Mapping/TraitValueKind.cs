namespace Thrivestack.EfCore.Mapping;

/// <summary>How a trait value is written to JSON; decided once per property when the model is read.</summary>
internal enum TraitValueKind
{
    String,
    Boolean,
    Number,
    DateTime,
    DateTimeOffset,
    DateOnly,
    StringArray,
    Formattable,
}
