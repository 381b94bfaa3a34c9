using System.Net;
using System.Text;

namespace Thrivestack.EfCore.Testing.Tests.Infrastructure;

/// <summary>
/// A body whose first byte is sent at once and the rest only after <see cref="Release"/>: the request stays in flight at
/// the stand-in, reading its body, until the test lets it finish.
/// </summary>
internal sealed class HeldContent(string json) : HttpContent
{
    private readonly byte[] _bytes = Encoding.UTF8.GetBytes(json);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => _released.TrySetResult();

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        await stream.WriteAsync(_bytes.AsMemory(0, 1));
        await stream.FlushAsync();
        await _released.Task;
        await stream.WriteAsync(_bytes.AsMemory(1));
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _bytes.Length;
        return true;
    }
}
