using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench;

/// <summary>
/// An application host with its own SQLite file, started on an empty outbox and kept for several runs: its first run
/// is a new dispatcher's first backlog (the concurrency limit starts at 1), the later ones find the limit it settled at.
/// </summary>
internal sealed class NetworkHost : IAsyncDisposable
{
    private readonly ThrivestackStandIn standIn;
    private readonly string path;
    private readonly IHost host;

    private NetworkHost(ThrivestackStandIn standIn, string path, IHost host, Breakdown? breakdown)
    {
        this.standIn = standIn;
        this.path = path;
        this.host = host;
        Breakdown = breakdown;
    }

    public Breakdown? Breakdown { get; }

    public static async Task<NetworkHost> StartAsync(ThrivestackStandIn standIn, string template, int batch, int maxConcurrentRequests, bool breakdown)
    {
        var path = SqliteBench.Copy(template, "network-library");
        SqliteBench.Execute(path, $"DELETE FROM {SqliteBench.Outbox};");
        var timing = breakdown ? new Breakdown() : null;

        // Default options but two: the bound on requests in flight under test, and no polling between runs (a poll could
        // claim rows of the next backlog before its clock starts; the nudge starts each run, as a save would).
        var host = DispatcherHost.Build(
            o =>
            {
                SqliteBench.Configure(o, path, interceptor: false);
                if (timing is not null)
                {
                    o.AddInterceptors(new SqliteStatementTimer(timing));
                }
            },
            standIn.Endpoint, standIn.ApiToken, batch, o =>
            {
                o.MaxConcurrentRequests = maxConcurrentRequests;
                o.PollInterval = TimeSpan.FromHours(1);
            });
        await host.StartAsync();
        return new NetworkHost(standIn, path, host, timing);
    }

    /// <summary>
    /// Appends the template's rows, sets the stand-in's faults, then times from the nudge (one more identify event,
    /// counted) until the stand-in has every event and none is pending.
    /// </summary>
    public async Task<NetworkRun> DrainAsync(string template, int rows, Action<StandInFaults> faults)
    {
        standIn.Reset();
        faults(standIn.Faults);
        SqliteBench.Refill(path, template);
        Breakdown?.Clear();
        var cpu = CpuSnapshot.Take();
        var start = TimeProvider.System.GetUtcNow();
        var clock = Stopwatch.StartNew();
        using (var scope = host.Services.CreateScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
            context.EnqueueThrivestackIdentify("bench-nudge");
            await context.SaveChangesAsync();
        }

        await standIn.WaitForEventsAsync(rows + 1, TimeSpan.FromMinutes(10));
        while (SqliteBench.Pending(path) > 0)
        {
            await Task.Delay(1);
        }

        clock.Stop();
        var end = start + clock.Elapsed;
        var run = DrainScenario.Run.Of(rows + 1, standIn.AcceptedEventCount, clock.Elapsed, cpu, CpuSnapshot.Take());
        return new NetworkRun(run, standIn.Requests, start, end, standIn.PeakConcurrentRequests);
    }

    public async ValueTask DisposeAsync()
    {
        await host.StopAsync();
        host.Dispose();
        Breakdown?.Dispose();
        SqliteBench.Delete(path);
    }
}
