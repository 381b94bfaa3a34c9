using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>
/// A TCP relay on 127.0.0.1 in front of the PostgreSQL server that counts the server's ReadyForQuery messages: the
/// server sends one at the end of every request the client waits for, so the count is the round trips made.
/// Connect without TLS (<c>SSL Mode=Disable</c>): the relay reads the protocol's message headers.
/// </summary>
public sealed class PostgresRoundTripCounter : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new();
    private readonly List<TcpClient> sockets = [];
    private readonly Task accepting;
    private int readyForQuery;

    public PostgresRoundTripCounter(string host, int port)
    {
        listener.Start();
        accepting = AcceptAsync(host, port);
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>ReadyForQuery messages relayed so far.</summary>
    public int ReadyForQuery => Volatile.Read(ref readyForQuery);

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        listener.Stop();
        lock (sockets)
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }

        try
        {
            await accepting;
        }
        catch (OperationCanceledException)
        {
        }

        stop.Dispose();
    }

    private async Task AcceptAsync(string host, int port)
    {
        while (!stop.IsCancellationRequested)
        {
            var client = await listener.AcceptTcpClientAsync(stop.Token);
            var server = new TcpClient();
            await server.ConnectAsync(host, port, stop.Token);
            lock (sockets)
            {
                sockets.Add(client);
                sockets.Add(server);
            }

            _ = RelayAsync(client.GetStream(), server.GetStream(), count: false);
            _ = RelayAsync(server.GetStream(), client.GetStream(), count: true);
        }
    }

    private async Task RelayAsync(NetworkStream from, NetworkStream to, bool count)
    {
        var buffer = new byte[64 * 1024];
        var header = new byte[5];
        var headerLength = 0;
        long rest = 0;
        var started = false;
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, stop.Token)) > 0)
            {
                for (var i = 0; count && i < read;)
                {
                    if (rest > 0)
                    {
                        var skip = (int)Math.Min(rest, read - i);
                        i += skip;
                        rest -= skip;
                    }
                    else if (!started && headerLength == 0 && buffer[i] == (byte)'N')
                    {
                        // The one-byte refusal of an encryption request, before the first typed message.
                        i++;
                    }
                    else
                    {
                        header[headerLength++] = buffer[i++];
                        if (headerLength == header.Length)
                        {
                            started = true;
                            headerLength = 0;
                            rest = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1)) - 4;
                            if (header[0] == (byte)'Z')
                            {
                                Interlocked.Increment(ref readyForQuery);
                            }
                        }
                    }
                }

                await to.WriteAsync(buffer.AsMemory(0, read), stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            try
            {
                to.Socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
