using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// Ships the outbox of <typeparamref name="TContext"/>: woken by in-process commits, polling as the fallback,
/// claiming bounded pages under a lease, pausing on a refused token or an unreachable ThriveStack, and
/// riding out database outages without a restart.
/// </summary>
internal sealed class OutboxDispatcher<TContext> : BackgroundService
    where TContext : DbContext
{
    private static readonly TimeSpan StatisticsInterval = TimeSpan.FromSeconds(5);

    private readonly IServiceScopeFactory scopes;
    private readonly ThrivestackOptions options;
    private readonly ThrivestackClient client;
    private readonly OutboxSignal signal;
    private readonly TimeProvider time;
    private readonly ThrivestackMetrics metrics;
    private readonly DispatcherStatus<TContext> status;
    private readonly ILogger logger;
    private readonly string contextName = typeof(TContext).Name;
    private readonly string owner = OutboxStore.Truncate($"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid():N}", 200);
    private int sendFailures;
    private int outboxFailures;
    private int consecutiveAuthFailures;
    private DateTimeOffset lastStatistics = DateTimeOffset.MinValue;
    private DateTimeOffset lastCleanup = DateTimeOffset.MinValue;

    public OutboxDispatcher(
        IServiceScopeFactory scopes,
        IOptionsMonitor<ThrivestackOptions> optionsMonitor,
        IHttpClientFactory httpClientFactory,
        OutboxSignal signal,
        TimeProvider time,
        ThrivestackMetrics metrics,
        DispatcherStatus<TContext> status,
        ILogger<OutboxDispatcher<TContext>> logger)
    {
        this.scopes = scopes;
        options = optionsMonitor.Get(ThrivestackRegistration.OptionsName<TContext>());
        client = new ThrivestackClient(httpClientFactory, ThrivestackRegistration.OptionsName<TContext>(), options, time, metrics);
        this.signal = signal;
        this.time = time;
        this.metrics = metrics;
        this.status = status;
        this.logger = logger;
    }

    /// <summary>Rows claimed at once: a few batches, so one claim keeps the sender busy without a large lease.</summary>
    private int ClaimSize => Math.Min(options.MaxEventsPerBatch * 4, 4000);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        Log.DispatcherStarted(logger, contextName, owner);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var seen = signal.Version;
                var wait = await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                if (wait > TimeSpan.Zero)
                {
                    await WaitAsync(seen, wait, stoppingToken).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        Log.DispatcherStopped(logger, contextName);
    }

    /// <summary>Claims and ships one page; returns how long to wait before the next (zero: go on at once).</summary>
    internal async Task<TimeSpan> RunOnceAsync(CancellationToken stoppingToken)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var context = scope.ServiceProvider.GetRequiredService<TContext>();
            var store = new OutboxStore(context);
            if (context.Database.ProviderName == OutboxClaimSql.Sqlite)
            {
                // Wait inside SQLite (short sleeps) while the app holds the write lock, instead of taking SQLITE_BUSY
                // and Microsoft.Data.Sqlite's 150 ms retry sleeps. The connection stays open for this cycle.
                await context.Database.OpenConnectionAsync(stoppingToken).ConfigureAwait(false);
                await context.Database.ExecuteSqlRawAsync("PRAGMA busy_timeout = 5000;", stoppingToken).ConfigureAwait(false);
            }

            await HousekeepingAsync(store, stoppingToken).ConfigureAwait(false);

            var leaseId = Guid.NewGuid();
            var now = time.GetUtcNow().UtcDateTime;
            var leaseEnd = now + options.LeaseDuration;
            var rows = await store.ClaimAsync(leaseId, owner, now, leaseEnd, ClaimSize, stoppingToken).ConfigureAwait(false);
            OutboxReachable();
            if (rows.Count == 0)
            {
                return options.PollInterval;
            }

            var cycle = new DispatchCycle(store, client, options, time, metrics, logger, contextName, leaseId);
            await cycle.RunAsync(rows, leaseEnd, stoppingToken).ConfigureAwait(false);
            return cycle.Result switch
            {
                CycleResult.Unauthorized => Paused(cycle.LastFailure!),
                CycleResult.Transient => Failed(cycle.LastFailure!),
                _ => Succeeded(),
            };
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            return OutboxFailed(ex);
        }
    }

    private async Task HousekeepingAsync(OutboxStore store, CancellationToken stoppingToken)
    {
        var now = time.GetUtcNow();
        if (now - lastStatistics >= StatisticsInterval)
        {
            lastStatistics = now;
            var statistics = await store.StatisticsAsync(now.UtcDateTime, stoppingToken).ConfigureAwait(false);
            status.Statistics = statistics;
            metrics.Publish(contextName, statistics);
        }

        if (options.DeliveredRetention > TimeSpan.Zero && now - lastCleanup >= TimeSpan.FromMinutes(1))
        {
            lastCleanup = now;
            var removed = await store.CleanupDeliveredAsync((now - options.DeliveredRetention).UtcDateTime, stoppingToken).ConfigureAwait(false);
            if (removed > 0)
            {
                Log.DeliveredCleanedUp(logger, removed, contextName);
            }
        }
    }

    private TimeSpan Succeeded()
    {
        sendFailures = 0;
        if (status.AuthPausedSince is not null)
        {
            status.AuthPausedSince = null;
            consecutiveAuthFailures = 0;
            Log.SendingResumed(logger, contextName);
        }

        return TimeSpan.Zero;
    }

    // ThriveStack is failing: the rows of the failed batch wait their backoff; the dispatcher backs off too,
    // so an outage costs one batch an attempt per probe instead of every row an attempt per poll.
    private TimeSpan Failed(SendResult failure)
    {
        sendFailures++;
        return RetrySchedule.Delay(sendFailures, options.RetryBaseDelay, options.RetryMaxDelay, failure.RetryAfter);
    }

    private TimeSpan Paused(SendResult failure)
    {
        consecutiveAuthFailures++;
        var pause = RetrySchedule.Delay(consecutiveAuthFailures, options.RetryBaseDelay, options.RetryMaxDelay);
        if (status.AuthPausedSince is null)
        {
            status.AuthPausedSince = time.GetUtcNow();
            Log.SendingPaused(logger, failure.Describe(), contextName, pause);
        }

        return pause;
    }

    private void OutboxReachable()
    {
        outboxFailures = 0;
        if (status.OutboxUnavailableSince is { } since)
        {
            status.OutboxUnavailableSince = null;
            status.OutboxError = null;
            Log.OutboxRecovered(logger, contextName, time.GetUtcNow() - since);
        }
    }

    // One error per outage: logged when the outbox becomes unreachable, then quiet until it recovers.
    private TimeSpan OutboxFailed(Exception exception)
    {
        if (status.OutboxUnavailableSince is null)
        {
            status.OutboxUnavailableSince = time.GetUtcNow();
            Log.OutboxUnavailable(logger, exception, contextName);
        }

        status.OutboxError = exception.GetType().Name;
        outboxFailures++;
        return RetrySchedule.Delay(outboxFailures, TimeSpan.FromMilliseconds(250), options.PollInterval * 5);
    }

    private async Task WaitAsync(long seen, TimeSpan wait, CancellationToken stoppingToken)
    {
        // A nudge cuts a poll wait short, never a backoff: during an outage commits must not hammer ThriveStack.
        if (status.AuthPausedSince is not null || sendFailures > 0 || outboxFailures > 0)
        {
            await Task.Delay(wait, time, stoppingToken).ConfigureAwait(false);
            return;
        }

        using var timerCancellation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var timer = Task.Delay(wait, time, timerCancellation.Token);
        await Task.WhenAny(timer, signal.WaitAsync(seen)).ConfigureAwait(false);
        await timerCancellation.CancelAsync().ConfigureAwait(false);
        stoppingToken.ThrowIfCancellationRequested();
    }
}
