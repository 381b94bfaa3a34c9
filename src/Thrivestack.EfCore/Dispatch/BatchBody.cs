using System.Buffers;
using System.Text;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// Packs events into requests within the count and byte limits, measured on the exact body sent
/// (<c>[</c>, the events joined by commas, <c>]</c>), and writes a body into a pooled buffer.
/// </summary>
internal static class BatchBody
{
    public static int SizeOf(int eventBytes, int eventCount) => eventBytes + Math.Max(0, eventCount - 1) + 2;

    /// <summary>Splits events into batches in order; events too large for any request go to <paramref name="oversized"/>.</summary>
    public static List<List<OutboxEvent>> Pack(List<OutboxEvent> events, int maxEvents, int maxBytes, List<OutboxEvent> oversized)
    {
        var batches = new List<List<OutboxEvent>>();
        var current = new List<OutboxEvent>();
        var bytes = 0;
        foreach (var e in events)
        {
            if (SizeOf(e.Bytes, 1) > maxBytes)
            {
                oversized.Add(e);
                continue;
            }

            if (current.Count == maxEvents || SizeOf(bytes + e.Bytes, current.Count + 1) > maxBytes)
            {
                batches.Add(current);
                current = [];
                bytes = 0;
            }

            current.Add(e);
            bytes += e.Bytes;
        }

        if (current.Count > 0)
        {
            batches.Add(current);
        }

        return batches;
    }

    /// <summary>Writes the JSON array; the caller returns <paramref name="buffer"/> to the shared pool.</summary>
    public static ReadOnlyMemory<byte> Write(IReadOnlyList<OutboxEvent> batch, out byte[] buffer)
    {
        var size = SizeOf(batch.Sum(e => e.Bytes), batch.Count);
        buffer = ArrayPool<byte>.Shared.Rent(size);
        var span = buffer.AsSpan();
        span[0] = (byte)'[';
        var position = 1;
        for (var i = 0; i < batch.Count; i++)
        {
            if (i > 0)
            {
                span[position++] = (byte)',';
            }

            position += Encoding.UTF8.GetBytes(batch[i].Row.Payload, span[position..]);
        }

        span[position++] = (byte)']';
        return buffer.AsMemory(0, position);
    }
}
