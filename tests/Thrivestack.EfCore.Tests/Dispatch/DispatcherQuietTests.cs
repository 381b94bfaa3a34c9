using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Telemetry;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>An idle dispatcher keeps the app's log quiet, even where EF's commands are logged at Information; durations read as people write them.</summary>
public sealed class DispatcherQuietTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dispatcher_IdleWithEfCommandsLoggedAtInformation_WritesNoEfLines()
    {
        await using var harness = await DispatchHarness.StartAsync();
        var clock = new WatchedClock();

        // As the web template does: EF's commands at Information (the harness otherwise keeps EF at Warning).
        var host = harness.BuildHost(
            o => o.PollInterval = TimeSpan.FromSeconds(1),
            clock,
            services => services.AddLogging(l => l.AddFilter<LogCollector>("Microsoft.EntityFrameworkCore", LogLevel.Information)));
        await host.StartAsync();

        // (The model's one-time validation warnings are the app's, not the dispatcher's.) Ten idle polls, and the statistics read (every 5 s) twice.
        for (var poll = 1; poll <= 10; poll++)
        {
            await clock.WaitForWaitsAsync(poll, due => due == TimeSpan.FromSeconds(1), Deadline);
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        await clock.WaitForWaitsAsync(11, due => due == TimeSpan.FromSeconds(1), Deadline);
        var ef = harness.Logs.Lines.Where(l => (l.Category.StartsWith("Microsoft.EntityFrameworkCore.Database", StringComparison.Ordinal) || l.Category.StartsWith("Microsoft.EntityFrameworkCore.Query", StringComparison.Ordinal)) && l.Level >= LogLevel.Information).ToList();
        Assert.True(ef.Count == 0, string.Join(Environment.NewLine, ef.Select(l => $"{l.Category}: {l.Message}")));
        Assert.Empty(harness.StandIn.Requests);
    }

    [Theory]
    [InlineData(19.6, "20 ms")]
    [InlineData(791.158, "0.8 s")]
    [InlineData(12_400, "12 s")]
    [InlineData(300_000, "5 min")]
    [InlineData(150_000, "2.5 min")]
    [InlineData(5_400_000, "1.5 h")]
    [InlineData(172_800_000, "2 d")]
    public void Format_Duration_ReadsAsPeopleWriteIt(double milliseconds, string expected) =>
        Assert.Equal(expected, HumanDuration.Format(TimeSpan.FromMilliseconds(milliseconds)));
}
