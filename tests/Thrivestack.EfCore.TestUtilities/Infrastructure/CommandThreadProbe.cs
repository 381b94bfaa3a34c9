using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SQLitePCL;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// Where each command of the host's contexts ran, and where their connections were opened, from <see cref="Start"/> to
/// <see cref="Stop"/>. On SQLite every statement is seen (<c>sqlite3_trace</c>, called on the thread that runs it), also
/// those the dispatcher runs straight on the connection past EF's command interceptors (claim, lease, statistics).
/// </summary>
internal sealed class CommandThreadProbe : CommandWatcher, IDbConnectionInterceptor
{
    public const string Opened = "(connection opened)";

    /// <summary>The prefix of a statement seen by SQLite's trace (the same statement may also be seen as an EF command).</summary>
    public const string Statement = "(sqlite) ";

    private volatile bool recording;

    public ConcurrentQueue<(string Text, string? Thread, bool OnThreadPool)> Seen { get; } = new();

    /// <summary>
    /// Runs a dispatcher (4 lanes, batches of 10, answers after 20 ms so that lanes overlap, claims ahead and not) over
    /// <paramref name="users"/> users' events, from its first claim to its stop, and tells where each statement ran. The
    /// start-up check's statements run where the host's start runs them: what is watched begins after them.
    /// </summary>
    public static async Task<(string Text, string? Thread, bool OnThreadPool)[]> WatchDrainAsync(DispatchHarness harness, int users, TimeSpan deadline)
    {
        harness.StandIn.Faults.Latency = TimeSpan.FromMilliseconds(20);
        var probe = new CommandThreadProbe();
        var host = harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 10;
                o.MaxConcurrentRequests = 4;
                o.PollInterval = TimeSpan.FromMilliseconds(50);
            },
            services: s =>
            {
                s.ConfigureDbContext<TestDbContext>(o => o.AddInterceptors(probe));

                // Started after every hosted service's StartingAsync (the start-up check's) and before the dispatcher's
                // StartAsync: the dispatcher's first claim, with the leader's first housekeeping, is always watched.
                s.Insert(0, ServiceDescriptor.Singleton<IHostedService>(new StartsRecording(probe)));
            });
        await host.StartAsync();
        await harness.EnqueueAsync(Enumerable.Range(0, users).Select(i => ($"u{i:000}", (IReadOnlyDictionary<string, object?>?)null)));
        try
        {
            await harness.StandIn.WaitForEventsAsync(users, deadline);
            await harness.WaitForOutboxAsync(rows => rows.Count == 0, deadline);
        }
        finally
        {
            // The stop included: the dispatcher gives back the outbox-wide lease it holds on SQLite.
            await host.StopAsync();
            probe.Stop();
        }

        return [.. probe.Seen];
    }

    public void Start() => recording = true;

    public void Stop() => recording = false;

    public InterceptionResult ConnectionOpening(DbConnection connection, ConnectionEventData eventData, InterceptionResult result)
    {
        Record(Opened);
        return result;
    }

    public void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Hook(connection);

    public Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Hook(connection);
        return Task.CompletedTask;
    }

    private void Hook(DbConnection connection)
    {
        if (connection is SqliteConnection { Handle: { } handle })
        {
            raw.sqlite3_trace(handle, Trace, null);
        }
    }

    public ValueTask<InterceptionResult> ConnectionOpeningAsync(
        DbConnection connection, ConnectionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        Record(Opened);
        return ValueTask.FromResult(result);
    }

    protected override void Executing(DbCommand command) => Record(command.CommandText.TrimStart());

    private void Trace(object userData, utf8z statement) => Record(Statement + statement.utf8_to_string().TrimStart());

    private void Record(string what)
    {
        if (recording)
        {
            Seen.Enqueue((what, Thread.CurrentThread.Name, Thread.CurrentThread.IsThreadPoolThread));
        }
    }

    private sealed class StartsRecording(CommandThreadProbe probe) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            probe.Start();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
