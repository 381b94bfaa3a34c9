using System.Text.Json;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Capture;

public sealed class IdentifyEventWriterTests
{
    private static readonly DateTime Now = new(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc);

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Trait_NonFiniteDouble_IsLeftOutLikeNull(double value)
    {
        var writer = IdentifyEventWriter.Start("u1", Now);
        writer.Trait("score", TraitValueKind.Number, value);
        writer.Trait("rating", TraitValueKind.Number, (float)value);
        var message = writer.Finish("u1", null, Now, OutboxEventKind.UserTraits);

        var json = JsonDocument.Parse(message.Payload).RootElement;
        Assert.False(json.TryGetProperty("traits", out _), message.Payload);
    }

    [Fact]
    public void Trait_NaNBesideFiniteTrait_WritesOnlyTheFiniteOne()
    {
        var writer = IdentifyEventWriter.Start("u1", Now);
        writer.Trait("score", TraitValueKind.Number, double.NaN);
        writer.Trait("age", TraitValueKind.Number, 36);
        var message = writer.Finish("u1", null, Now, OutboxEventKind.UserTraits);

        var traits = JsonDocument.Parse(message.Payload).RootElement.GetProperty("traits");
        Assert.Equal(36, traits.GetProperty("age").GetInt32());
        Assert.False(traits.TryGetProperty("score", out _));
    }

    [Fact]
    public void Start_AnotherTimestampOnTheSameThread_WritesEachEventsOwnTimestamp()
    {
        var later = Now.AddTicks(1_234_567);
        var first = IdentifyEventWriter.Start("u1", Now).Finish("u1", null, Now, OutboxEventKind.UserTraits);
        var second = IdentifyEventWriter.Start("u1", later).Finish("u1", null, later, OutboxEventKind.UserTraits);
        var again = IdentifyEventWriter.Start("u1", Now).Finish("u1", null, Now, OutboxEventKind.UserTraits);

        Assert.Equal("2026-11-30T12:00:00.000000Z", Timestamp(first));
        Assert.Equal("2026-11-30T12:00:00.123456Z", Timestamp(second));
        Assert.Equal("2026-11-30T12:00:00.000000Z", Timestamp(again));
    }

    private static string? Timestamp(OutboxMessage message) =>
        JsonDocument.Parse(message.Payload).RootElement.GetProperty("timestamp").GetString();
}
