namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal static class LogTail
{
    private const int MaxChars = 8000;

    public static long Length(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    /// <summary>The log from <paramref name="from"/> on (at most its last part); never throws.</summary>
    public static string Read(string path, long from = 0)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            stream.Seek(Math.Max(from, stream.Length - MaxChars), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"(unavailable: {e.Message})";
        }
    }
}
