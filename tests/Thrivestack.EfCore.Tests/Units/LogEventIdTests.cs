using System.Reflection;
using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>
/// The README, the troubleshooting notes and users' log filters name the library's lines by event id: two lines with one
/// id would send a reader to the wrong explanation (log 44 was given twice once, "stays idle" and a stale refusal).
/// </summary>
public sealed class LogEventIdTests
{
    [Fact]
    public void LoggerMessages_OfTheLibrary_HaveDistinctEventIds()
    {
        var messages = typeof(ThrivestackOptions).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: $"{m.DeclaringType!.Name}.{m.Name}", Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .ToList();

        Assert.True(messages.Count > 40, $"only {messages.Count} logger messages found: the scan misses them");
        var shared = messages.GroupBy(m => m.Attribute!.EventId)
            .Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Method))}");
        Assert.Empty(shared);
    }
}
