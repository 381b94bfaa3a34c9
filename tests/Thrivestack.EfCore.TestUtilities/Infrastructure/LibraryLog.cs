namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>Picks the library's own log lines: its event ids overlap those of Microsoft.Extensions.Hosting and HttpClient.</summary>
internal static class LibraryLog
{
    public static bool Is(this LogCollector.LogLine line, int eventId) =>
        line.EventId.Id == eventId && line.Category.StartsWith("Thrivestack.EfCore.", StringComparison.Ordinal);

    public static int Count(this LogCollector logs, int eventId) => logs.Lines.Count(l => l.Is(eventId));
}
