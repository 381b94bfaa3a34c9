using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// An application host with its own SQLite file, started on an empty outbox and kept for several runs: its first run
/// is a new dispatcher's first backlog (the concurrency limit starts at the maximum and has seen one answer), the later ones find the limit it settled at.
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

    public static async Task<NetworkHost> StartAsync(ThrivestackStandIn standIn, string template, int batch, int maxConcurrentRequests, bool breakdown, Action<StandInFaults> primeFaults)
    {
        var path = SqliteBench.Copy(template, "network-library");
        SqliteBench.Execute(path, $"DELETE FROM {SqliteBench.Outbox};");
        var timing = breakdown ? new Breakdown() : null;
        var claims = new StrongBox<int>();
        var timer = new SqliteStatementTimer((kind, ticks) =>
        {
            if (kind == Breakdown.ClaimKind)
            {
                Interlocked.Increment(ref claims.Value);
            }

            timing?.Add(kind, ticks);
        });

        // Default options but two: the bound on requests in flight under test, and no polling between runs (a poll could
        // claim rows of the next backlog before its clock starts; the nudge starts each run, as a save would).
        var host = DispatcherHost.Build(
            o => SqliteBench.Configure(o, path, interceptor: false).AddInterceptors(timer),
            standIn.Endpoint,
            standIn.ApiToken,
            batch,
            o =>
            {
                o.MaxConcurrentRequests = maxConcurrentRequests;
                o.PollInterval = TimeSpan.FromHours(1);
            });
        await host.StartAsync();
        var started = new NetworkHost(standIn, path, host, timing);
        await started.PrimeAsync(claims, primeFaults);
        return started;
    }

    /// <summary>
    /// Waits for the new dispatcher's start-up claim (an empty outbox), then sends one event through it and waits for the
    /// empty claim that follows its delivery: the dispatcher sleeps until a nudge, so no claim of the first run's rows
    /// starts before its clock. The new dispatcher's concurrency limit learns from that one answer: the stand-in answers
    /// it with <paramref name="faults"/>, normally those of the runs (a round trip of another length is remembered).
    /// </summary>
    private async Task PrimeAsync(StrongBox<int> claims, Action<StandInFaults> faults)
    {
        await WaitForClaimsAsync(claims, 1);
        var before = Volatile.Read(ref claims.Value);
        standIn.Reset();
        faults(standIn.Faults);
        using (var scope = host.Services.CreateScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<BenchDbContext>();
            context.EnqueueThrivestackIdentify("bench-prime");
            await context.SaveChangesAsync();
        }

        await standIn.WaitForEventsAsync(1, TimeSpan.FromMinutes(1));
        await WaitForClaimsAsync(claims, before + 2);
    }

    private async Task WaitForClaimsAsync(StrongBox<int> claims, int count)
    {
        var deadline = Stopwatch.StartNew();
        while (Volatile.Read(ref claims.Value) < count || SqliteBench.Pending(path) > 0)
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(1))
            {
                throw new TimeoutException($"The new host made {claims.Value} claims, expected {count}.");
            }

            await Task.Delay(1);
        }
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
        var limit = new LimitSampler();
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
        await limit.DisposeAsync();
        var end = start + clock.Elapsed;
        var run = DrainScenario.Run.Of(rows + 1, standIn.AcceptedEventCount, clock.Elapsed, cpu, CpuSnapshot.Take());
        return new NetworkRun(run, standIn.Requests, start, end, standIn.PeakConcurrentRequests, limit.Describe());
    }

    public async ValueTask DisposeAsync()
    {
        await host.StopAsync();
        host.Dispose();
        Breakdown?.Dispose();
        SqliteBench.Delete(path);
    }
}
