using System.Net;
using System.Text;

namespace Thrivestack.EfCore.Testing.Tests.Infrastructure;

/// <summary>
/// A body whose first byte is sent at once and the rest only after <see cref="Release"/>: the request stays in flight at
/// the stand-in, reading its body, until the test lets it finish.
/// </summary>
internal sealed class HeldContent(string json) : HttpContent
{
    private readonly byte[] bytes = Encoding.UTF8.GetBytes(json);
    private readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Release() => released.TrySetResult();

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        await stream.WriteAsync(bytes.AsMemory(0, 1));
        await stream.FlushAsync();
        await released.Task;
        await stream.WriteAsync(bytes.AsMemory(1));
    }

    protected override bool TryComputeLength(out long length)
    {
        length = bytes.Length;
        return true;
    }
}
