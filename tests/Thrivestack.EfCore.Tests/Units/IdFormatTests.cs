using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>user_id and group_id are written in invariant culture, whatever the thread's culture.</summary>
public sealed class IdFormatTests
{
    private static readonly IdMap Plain = new(IdProperty(), null, ThrivestackModelBuilderExtensions.MaxIdLength);

    [Theory]
    [InlineData(42, "42")]
    [InlineData(-42, "-42")]
    [InlineData(1234567, "1234567")]
    public void Format_Int_IsInvariant(int value, string expected) => InOddCulture(() => Assert.Equal(expected, Plain.Format(value)));

    [Fact]
    public void Format_Long_IsInvariant() => InOddCulture(() =>
    {
        Assert.Equal("9007199254740993", Plain.Format(9007199254740993L));
        Assert.Equal("-9007199254740993", Plain.Format(-9007199254740993L));
    });

    [Fact]
    public void Format_Decimal_UsesAPointWhateverTheCulture() => InOddCulture(() => Assert.Equal("1234.5", Plain.Format(1234.5m)));

    [Fact]
    public void Format_Guid_IsLowercaseWithHyphens()
    {
        var id = Guid.Parse("0F8FAD5B-D9CB-469F-A165-70867728950E");

        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e", Plain.Format(id));
    }

    [Fact]
    public void Format_String_IsKeptAsIs() => Assert.Equal("user 7/ä", Plain.Format("user 7/ä"));

    [Fact]
    public void Format_NullOrEmpty_IsNull()
    {
        Assert.Null(Plain.Format(null));
        Assert.Null(Plain.Format(""));
    }

    [Fact]
    public void Format_ValueConverter_FormatsTheProviderValue()
    {
        var map = new IdMap(IdProperty(), new ValueConverter<UserKey, long>(k => k.Value, v => new UserKey(v)), ThrivestackModelBuilderExtensions.MaxIdLength);

        InOddCulture(() => Assert.Equal("-5000", map.Format(new UserKey(-5000))));
    }

    [Fact]
    public void FormatTimestamp_Utc_IsIso8601WithMicrosecondsAndZ() => InOddCulture(() =>
        Assert.Equal(
            "2023-12-14T16:07:33.571125Z",
            IdentifyEventWriter.FormatTimestamp(new DateTime(2023, 12, 14, 16, 7, 33, DateTimeKind.Utc).AddTicks(5711250))));

    private static Microsoft.EntityFrameworkCore.Metadata.IProperty IdProperty()
    {
        var options = new DbContextOptionsBuilder<TestDbContext>().UseSqlite("Data Source=:memory:").Options;
        using var context = new TestDbContext(options);
        return context.Model.FindEntityType(typeof(NumberedUser))!.FindProperty(nameof(NumberedUser.Id))!;
    }

    /// <summary>A culture whose numbers look nothing like invariant ones: a tilde for minus, comma decimals, dot groups.</summary>
    private static void InOddCulture(Action test)
    {
        var odd = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        odd.NumberFormat.NegativeSign = "~";
        odd.NumberFormat.NumberDecimalSeparator = ",";
        odd.NumberFormat.NumberGroupSeparator = ".";
        odd.DateTimeFormat.TimeSeparator = ".";
        var previous = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = odd;
        try
        {
            Assert.Equal("~1", (-1).ToString(CultureInfo.CurrentCulture));
            test();
        }
        finally
        {
            CultureInfo.CurrentCulture = previous;
        }
    }

    private readonly record struct UserKey(long Value);
}
