using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Thrivestack.EfCore.Tests.Client;

/// <summary>
/// A raw HTTP/1.1 server on 127.0.0.1 that answers byte by byte what the test scripts: one request per connection, then the
/// connection is closed. It records every request (head and body) and counts connections, also those that never sent one.
/// </summary>
internal sealed class LoopbackHttpServer : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly Func<int, RawRequest, Stream, CancellationToken, Task> respond;
    private readonly CancellationTokenSource stopping = new();
    private readonly ConcurrentQueue<RawRequest> requests = new();
    private readonly ConcurrentBag<Task> connections = [];
    private readonly Task acceptLoop;
    private int connectionCount;

    private LoopbackHttpServer(Func<int, RawRequest, Stream, CancellationToken, Task> respond)
    {
        this.respond = respond;
        listener.Start();
        acceptLoop = AcceptAsync();
    }

    public Uri Endpoint => new($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/api/identify");

    public IReadOnlyList<RawRequest> Requests => requests.ToArray();

    public int ConnectionCount => Volatile.Read(ref connectionCount);

    /// <summary>Starts a server; <paramref name="respond"/> gets the request's index (from 0) and writes the whole answer.</summary>
    public static LoopbackHttpServer Start(Func<int, RawRequest, Stream, CancellationToken, Task> respond) => new(respond);

    /// <summary>Starts a server that writes <paramref name="answer"/> (from <see cref="Answer"/>) to every request.</summary>
    public static LoopbackHttpServer Start(byte[] answer) => new((_, _, stream, ct) => stream.WriteAsync(answer, ct).AsTask());

    /// <summary>Starts a server that writes the answer <paramref name="answerFor"/> gives for the request's index (from 0).</summary>
    public static LoopbackHttpServer Start(Func<int, byte[]> answerFor) => new((index, _, stream, ct) => stream.WriteAsync(answerFor(index), ct).AsTask());

    /// <summary>An exact HTTP/1.1 answer with a Content-Length and <c>Connection: close</c>.</summary>
    public static byte[] Answer(string statusLine, string body = "", params string[] headers)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var head = new StringBuilder($"HTTP/1.1 {statusLine}\r\n");
        foreach (var header in headers)
        {
            head.Append(header).Append("\r\n");
        }

        head.Append($"Content-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
        return [.. Encoding.UTF8.GetBytes(head.ToString()), .. bytes];
    }

    /// <summary>Waits until every connection handler has finished (the client closed or the answer was written).</summary>
    public async Task WaitForConnectionsAsync() => await Task.WhenAll(connections.ToArray());

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        listener.Stop();
        try
        {
            await acceptLoop;
            await Task.WhenAll(connections.ToArray());
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }

        stopping.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!stopping.IsCancellationRequested)
        {
            TcpClient socket;
            try
            {
                socket = await listener.AcceptTcpClientAsync(stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref connectionCount);
            connections.Add(Task.Run(() => ServeAsync(socket)));
        }
    }

    private async Task ServeAsync(TcpClient socket)
    {
        using (socket)
        {
            try
            {
                var stream = socket.GetStream();
                var request = await ReadRequestAsync(stream, stopping.Token);
                if (request is null)
                {
                    return;
                }

                var index = requests.Count;
                requests.Enqueue(request);
                await respond(index, request, stream, stopping.Token);
                await stream.FlushAsync(stopping.Token);
                socket.Client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
            {
                // The client went away (it stopped reading, or the test ended): that is what some tests want.
            }
        }
    }

    private static async Task<RawRequest?> ReadRequestAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int headEnd;
        while ((headEnd = IndexOfHeadEnd(buffer)) < 0)
        {
            var read = await stream.ReadAsync(chunk, cancellationToken);
            if (read == 0)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        var all = buffer.ToArray();
        var head = Encoding.ASCII.GetString(all, 0, headEnd);
        var length = head.Split("\r\n")
            .Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            .Select(l => int.Parse(l["Content-Length:".Length..].Trim()))
            .FirstOrDefault();
        var body = new MemoryStream();
        body.Write(all, headEnd + 4, all.Length - headEnd - 4);
        while (body.Length < length)
        {
            var read = await stream.ReadAsync(chunk, cancellationToken);
            if (read == 0)
            {
                break;
            }

            body.Write(chunk, 0, read);
        }

        return new RawRequest(head, body.ToArray());
    }

    private static int IndexOfHeadEnd(MemoryStream buffer) =>
        buffer.GetBuffer().AsSpan(0, (int)buffer.Length).IndexOf("\r\n\r\n"u8);

    /// <summary>One request as it arrived: the request line and headers as text, and the body.</summary>
    public sealed record RawRequest(string Head, byte[] Body);
}
