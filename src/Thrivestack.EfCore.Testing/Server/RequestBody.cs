using System.Buffers;

namespace Thrivestack.EfCore.Testing.Server;

/// <summary>A request body read into a pooled buffer, never more than a limit; dispose to return the buffer.</summary>
internal sealed class RequestBody : IDisposable
{
    private const int UnknownLengthStart = 16 * 1024;

    private byte[] buffer;

    private RequestBody(byte[] buffer) => this.buffer = buffer;

    public int Length { get; private set; }

    public ReadOnlyMemory<byte> Memory => buffer.AsMemory(0, Length);

    /// <summary>Reads until the end of the body or until <paramref name="limit"/> bytes are read, whichever comes first.</summary>
    public static async Task<RequestBody> ReadAsync(Stream stream, long? contentLength, int limit, CancellationToken cancellationToken)
    {
        // One byte more than announced lets the end of the body show as a read of 0.
        var start = contentLength is long length ? (int)Math.Min(length + 1, limit) : Math.Min(UnknownLengthStart, limit);
        var body = new RequestBody(ArrayPool<byte>.Shared.Rent(Math.Max(start, 1)));
        try
        {
            while (body.Length < limit)
            {
                if (body.Length == body.buffer.Length)
                {
                    body.Grow(limit);
                }

                var room = Math.Min(body.buffer.Length, limit) - body.Length;
                var read = await stream.ReadAsync(body.buffer.AsMemory(body.Length, room), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                body.Length += read;
            }

            return body;
        }
        catch
        {
            body.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        var buffer = Interlocked.Exchange(ref this.buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Grow(int limit)
    {
        var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, limit));
        buffer.AsSpan(0, Length).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(buffer);
        buffer = larger;
    }
}
