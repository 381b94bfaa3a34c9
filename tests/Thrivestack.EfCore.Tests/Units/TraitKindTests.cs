using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>How each CLR type (kinds by name: TraitValueKind is internal, xUnit theories are public) is written as a trait, decided once per property; types without a JSON form are refused.</summary>
public sealed class TraitKindTests
{
    public static TheoryData<Type, string> Kinds => new()
    {
        { typeof(string), nameof(TraitValueKind.String) },
        { typeof(bool), nameof(TraitValueKind.Boolean) },
        { typeof(bool?), nameof(TraitValueKind.Boolean) },
        { typeof(byte), nameof(TraitValueKind.Number) },
        { typeof(sbyte), nameof(TraitValueKind.Number) },
        { typeof(short), nameof(TraitValueKind.Number) },
        { typeof(ushort), nameof(TraitValueKind.Number) },
        { typeof(int), nameof(TraitValueKind.Number) },
        { typeof(int?), nameof(TraitValueKind.Number) },
        { typeof(uint), nameof(TraitValueKind.Number) },
        { typeof(long), nameof(TraitValueKind.Number) },
        { typeof(ulong), nameof(TraitValueKind.Number) },
        { typeof(decimal), nameof(TraitValueKind.Number) },
        { typeof(double), nameof(TraitValueKind.Number) },
        { typeof(float), nameof(TraitValueKind.Number) },
        { typeof(DateTime), nameof(TraitValueKind.DateTime) },
        { typeof(DateTime?), nameof(TraitValueKind.DateTime) },
        { typeof(DateTimeOffset), nameof(TraitValueKind.DateTimeOffset) },
        { typeof(DateOnly), nameof(TraitValueKind.DateOnly) },
        { typeof(TimeOnly), nameof(TraitValueKind.Formattable) },
        { typeof(TimeSpan), nameof(TraitValueKind.Formattable) },
        { typeof(Guid), nameof(TraitValueKind.Formattable) },
        { typeof(Uri), nameof(TraitValueKind.Formattable) },
        { typeof(char), nameof(TraitValueKind.Formattable) },
        { typeof(DayOfWeek), nameof(TraitValueKind.Formattable) },
        { typeof(DayOfWeek?), nameof(TraitValueKind.Formattable) },
        { typeof(string[]), nameof(TraitValueKind.StringArray) },
        { typeof(List<string>), nameof(TraitValueKind.StringArray) },
        { typeof(IReadOnlyList<string>), nameof(TraitValueKind.StringArray) },
        { typeof(IEnumerable<string>), nameof(TraitValueKind.StringArray) },
        { typeof(HashSet<string>), nameof(TraitValueKind.StringArray) },
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TraitKind_SupportedType_HasItsJsonForm(Type type, string expected) =>
        Assert.Equal(expected, MappingResolver.TraitKind(type)?.ToString());

    [Theory]
    [InlineData(typeof(object))]
    [InlineData(typeof(byte[]))]
    [InlineData(typeof(List<int>))]
    [InlineData(typeof(Dictionary<string, string>))]
    [InlineData(typeof(TraitKindTests))]
    public void TraitKind_TypeWithoutAJsonForm_IsNull(Type type) => Assert.Null(MappingResolver.TraitKind(type));
}
