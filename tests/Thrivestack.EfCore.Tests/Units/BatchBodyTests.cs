using System.Text;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>Batch packing, counted on the exact body sent: <c>[</c>, the events joined by commas, <c>]</c>.</summary>
public sealed class BatchBodyTests
{
    [Fact]
    public void SizeOf_Events_CountsBracketsAndCommas()
    {
        Assert.Equal(2, BatchBody.SizeOf(0, 0));
        Assert.Equal(12, BatchBody.SizeOf(10, 1));
        Assert.Equal(34, BatchBody.SizeOf(30, 3));
    }

    [Fact]
    public void Pack_EventsThatExactlyFillTheByteLimit_GoInOneBatch()
    {
        // 3 x 10 bytes + 2 commas + 2 brackets = 34.
        var batches = Pack(Events(10, 10, 10), maxEvents: 100, maxBytes: 34, out var oversized);

        Assert.Equal([3], batches.Select(b => b.Count));
        Assert.Empty(oversized);
    }

    [Fact]
    public void Pack_OneByteOverTheLimit_StartsANewBatch()
    {
        var batches = Pack(Events(10, 10, 10), maxEvents: 100, maxBytes: 33, out var oversized);

        Assert.Equal([2, 1], batches.Select(b => b.Count));
        Assert.Empty(oversized);
        Assert.All(batches, b => Assert.True(BatchBody.SizeOf(b.Sum(e => e.Bytes), b.Count) <= 33));
    }

    [Fact]
    public void Pack_SingleEventExactlyAtTheLimit_IsSentAlone()
    {
        var batches = Pack(Events(5, 98, 5), maxEvents: 100, maxBytes: 100, out var oversized);

        Assert.Equal([1, 1, 1], batches.Select(b => b.Count));
        Assert.Equal(98, batches[1].Single().Bytes);
        Assert.Empty(oversized);
    }

    [Fact]
    public void Pack_SingleEventOneByteOverTheLimit_IsSetAsideWithoutBlockingTheOthers()
    {
        var events = Events(5, 99, 5);

        var batches = Pack(events, maxEvents: 100, maxBytes: 100, out var oversized);

        Assert.Same(events[1], Assert.Single(oversized));
        Assert.Equal([events[0].Row.Id, events[2].Row.Id], batches.SelectMany(b => b).Select(e => e.Row.Id));
    }

    [Fact]
    public void Pack_MoreEventsThanTheCountLimit_SplitsByCountInOrder()
    {
        var events = Events(1, 1, 1, 1, 1);

        var batches = Pack(events, maxEvents: 2, maxBytes: 1_000, out _);

        Assert.Equal([2, 2, 1], batches.Select(b => b.Count));
        Assert.Equal(events.Select(e => e.Row.Id), batches.SelectMany(b => b).Select(e => e.Row.Id));
    }

    [Fact]
    public void Pack_CountLimitOfOne_SendsEachEventAlone()
    {
        Assert.Equal([1, 1, 1], Pack(Events(3, 3, 3), maxEvents: 1, maxBytes: 1_000, out _).Select(b => b.Count));
    }

    [Fact]
    public void Pack_NoEvents_NoBatches()
    {
        Assert.Empty(Pack([], maxEvents: 10, maxBytes: 1_000, out var oversized));
        Assert.Empty(oversized);
    }

    [Fact]
    public void Pack_MultiByteText_CountsUtf8BytesNotCharacters()
    {
        // "é" is 2 bytes in UTF-8: 4 characters make 8 bytes, and two such events need 8 + 8 + 1 + 2 = 19 bytes.
        var events = new List<OutboxEvent> { Event(1, new string('é', 4)), Event(2, new string('é', 4)) };
        Assert.Equal(8, events[0].Bytes);

        Assert.Equal([2], Pack(events, 100, 19, out _).Select(b => b.Count));
        Assert.Equal([1, 1], Pack(events, 100, 18, out _).Select(b => b.Count));
    }

    [Fact]
    public void Write_Batch_IsTheJsonArrayOfThePayloadsWithTheCountedSize()
    {
        var batch = new List<OutboxEvent> { Event(1, "{\"user_id\":\"a\"}"), Event(2, "{\"user_id\":\"é\"}") };

        var body = BatchBody.Write(batch, out var buffer);
        try
        {
            Assert.Equal("[{\"user_id\":\"a\"},{\"user_id\":\"é\"}]", Encoding.UTF8.GetString(body.Span));
            Assert.Equal(BatchBody.SizeOf(batch.Sum(e => e.Bytes), batch.Count), body.Length);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static List<List<OutboxEvent>> Pack(List<OutboxEvent> events, int maxEvents, int maxBytes, out List<OutboxEvent> oversized)
    {
        oversized = [];
        return BatchBody.Pack(events, maxEvents, maxBytes, oversized);
    }

    private static List<OutboxEvent> Events(params int[] sizes) =>
        sizes.Select((size, i) => Event(i + 1, new string('x', size))).ToList();

    private static OutboxEvent Event(long id, string payload) =>
        new(new ClaimedRow { Id = id, UserId = $"user-{id}", Kind = (int)OutboxEventKind.Manual, Payload = payload });
}
