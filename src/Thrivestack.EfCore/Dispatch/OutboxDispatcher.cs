using System.Data.Common;
using System.Net.Sockets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// Ships the outbox of <typeparamref name="TContext"/>: woken by in-process commits, polling as the fallback,
/// claiming bounded pages under a lease, pausing on a refused token or an unreachable ThriveStack, and
/// riding out database outages without a restart.
/// </summary>
/// <remarks>
/// Up to <see cref="ThrivestackOptions.MaxConcurrentRequests"/> lanes each claim a page and send it; a
/// <see cref="ConcurrencyLimiter"/> decides how many of them hold a slot at once. Claims take whole users under a lease,
/// so the pages in flight hold disjoint users and each user's events stay in order. The first lane polls and answers
/// nudges; the others sleep until a lane claims a full page (a backlog), so an idle app sees one lane's statements.
/// While one lane claims, the others' requests are in flight, and on a backlog a lane claims its next page while its
/// page's last request is in flight: the pipe does not run dry between claims. A backoff, a pause or a Retry-After holds
/// every lane, and a page claimed ahead is given back rather than held through it.
/// </remarks>
internal sealed class OutboxDispatcher<TContext> : BackgroundService
    where TContext : DbContext
{
    private static readonly TimeSpan StatisticsInterval = TimeSpan.FromSeconds(5);

    /// <summary>How long a nudge waits for more commits when rows were claimed shortly before it.</summary>
    internal static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(10);

    /// <summary>Rows claimed this recently mean the app is busy: a nudge lingers.</summary>
    internal static readonly TimeSpan BusyWindow = TimeSpan.FromMilliseconds(100);

    private readonly IServiceScopeFactory scopes;
    private readonly ThrivestackOptions options;
    private readonly ThrivestackClient client;
    private readonly OutboxSignal signal;
    private readonly TimeProvider time;
    private readonly ThrivestackMetrics metrics;
    private readonly DispatcherStatus<TContext> status;
    private readonly ILogger logger;
    private readonly string contextName = typeof(TContext).Name;
    private readonly SendEvidence evidence = new();
    private readonly CancellationTokenSource abortSends = new();
    private readonly string owner = OutboxStore.NewOwner();
    private readonly ConcurrencyLimiter limiter;
    private readonly SemaphoreSlim moreWork = new(0);
    private readonly Lock stateGate = new();
    private readonly SemaphoreSlim claimGate = new(1, 1);
    private readonly HashSet<string> usersInFlight = new(StringComparer.Ordinal);

    /// <summary>Where claims (with the housekeeping and the lease they take) and acknowledgements run; see <see cref="DatabaseThread"/>.</summary>
    private DatabaseThread claims = DatabaseThread.Pool;
    private DatabaseThread writes = DatabaseThread.Pool;
    private DateTime outboxLeaseEnd = DateTime.MinValue;
    private DateTime outboxLeaseRetryAt = DateTime.MinValue;
    private bool standingBy;
    private DateTimeOffset resumeAt = DateTimeOffset.MinValue;

    /// <summary>The number of the latest-sent request whose failure or refusal set or joined the hold (guarded by <see cref="stateGate"/>).</summary>
    private long heldByRequest;

    /// <summary>
    /// The number of the latest request sent when a backoff or a pause last took a step (guarded by <see cref="stateGate"/>):
    /// a failure or refusal of a request up to it was in flight then, and belongs to that step whenever its answer is read
    /// (a 503 of a request in flight when a 401 paused every lane starts no backoff of its own).
    /// </summary>
    private long steppedAt;

    /// <summary>How loudly outages' backoffs and pauses begin and end (guarded by <see cref="stateGate"/>).</summary>
    private readonly EpisodeLog backoffLog = new();
    private readonly EpisodeLog pauseLog = new();
    private long lastRowsClaimedTicks;
    private int sendFailures;

    private int outboxFailures;

    // Moves on every failure of the outbox (a failed claim may move it twice: where it fails and where its lane reports
    // it): an operation that succeeds ends an outage only if it did not move while the operation ran (OutboxReachable).
    private long outboxFailuresEver;

    /// <summary>Pages claimed and not yet finished (their users in flight, their rows leased), in all lanes.</summary>
    private int pagesOutstanding;

    /// <summary>1 when a claim came back short while pages were outstanding: it may have skipped their users' newer rows.</summary>
    private int skippedBehindPages;

    /// <summary>The last write of acknowledgements failed; only a write that succeeds ends that outage (guarded by <see cref="stateGate"/>).</summary>
    private bool writeFailing;
    private int consecutivePauses;
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
        limiter = new ConcurrencyLimiter(options.MaxConcurrentRequests, time);
    }

    /// <summary>
    /// Rows claimed at once: a few batches, so one claim keeps the sender busy without a large lease. Two batches when more
    /// than two lanes share the work (the network is the wait), so the end of a backlog is spread over the lanes instead of
    /// the last pages finishing alone. Four otherwise: fewer claims, and when the database is the wait (one lane works)
    /// the batches delivered while one acknowledgement is written are acknowledged together by the next.
    /// </summary>
    private int ClaimSize => Math.Min(options.MaxEventsPerBatch * (limiter.Limit > 2 && limiter.NetworkIsTheWait ? 2 : 4), 4000);

    /// <summary>
    /// Stops starting new sends at once, but lets the request in flight finish and records its answer, so an accepted
    /// batch is not sent again after a deploy; the host's shutdown timeout (<paramref name="cancellationToken"/>) aborts it.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Cancels the stopping token (no new send starts) and waits for the loop, or for the host's shutdown timeout.
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (ExecuteTask is { IsCompleted: false } running)
        {
            // The timeout ran out with a request still in flight: abort it and let the loop release the rows it held.
            await abortSends.CancelAsync().ConfigureAwait(false);
            await running.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        // A refresh of the planner's statistics still running (milliseconds; cancelled with the sends above).
        await Volatile.Read(ref statisticsRefresh).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        claims.Dispose();
        writes.Dispose();
        abortSends.Dispose();
        moreWork.Dispose();
        claimGate.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        if (!options.SendingEnabled)
        {
            // The start-up check said so once; events stay in the outbox until sending is turned on.
            return;
        }

        var (hasOutbox, blocksOnAsync) = await HasOutboxAsync().ConfigureAwait(false);
        if (!hasOutbox)
        {
            // The start-up check said why (log 314 or 307): no claim could succeed, so none is tried.
            Log.DispatcherIdle(logger, contextName);
            return;
        }

        Log.DispatcherStarted(logger, contextName, owner, Endpoint);
        metrics.PublishLimit(contextName, () => limiter.Limit);
        if (blocksOnAsync)
        {
            // Claims and acknowledgements apart: a claim reads beside a write (SQLite's WAL) and need not queue behind it.
            claims = DatabaseThread.Dedicated($"Thrivestack claims ({contextName})");
            writes = DatabaseThread.Dedicated($"Thrivestack acknowledgements ({contextName})");
        }

        try
        {
            var lanes = new Task[options.MaxConcurrentRequests];
            for (var i = 0; i < lanes.Length; i++)
            {
                lanes[i] = RunLaneAsync(leader: i == 0, stoppingToken);
            }

            await Task.WhenAll(lanes).ConfigureAwait(false);
            await ReleaseOutboxLeaseAsync().ConfigureAwait(false);
        }
        finally
        {
            claims.Dispose();
            writes.Dispose();
        }

        Log.DispatcherStopped(logger, contextName);
    }

    /// <summary>
    /// False when the context runs on a provider without SQL (EF's InMemory, as in an app's tests) or its model maps no outbox:
    /// there is nothing to ship. True when the context cannot be made here: the lanes then report that failure as they retry.
    /// BlocksOnAsync: whether the provider's asynchronous calls block (<see cref="OutboxDialect.BlocksOnAsync"/>).
    /// </summary>
    private async Task<(bool HasOutbox, bool BlocksOnAsync)> HasOutboxAsync()
    {
        try
        {
            var scope = scopes.CreateAsyncScope();
            await using (scope.ConfigureAwait(false))
            {
                var context = scope.ServiceProvider.GetRequiredService<TContext>();
                var hasOutbox = context.Database.IsRelational() && ModelMap.For(context.Model).Outbox is not null;
                return (hasOutbox, hasOutbox && OutboxDialect.For(context).BlocksOnAsync);
            }
        }
        catch (Exception)
        {
            // Never let the check stop the host: the lanes meet the same failure, log it and retry. Their statements then run
            // on the thread pool whatever the provider: slower on SQLite under load, never wrong.
            return (true, false);
        }
    }

    private async Task RunLaneAsync(bool leader, CancellationToken stoppingToken)
    {
        await Task.Yield();
        var unexpectedFailures = 0;
        var backlog = false;

        // The last page's acknowledgements, still being written while this lane claims and sends the next page, and the
        // page's before it. Both complete with the backoff a failed write asks for (zero when written); neither throws.
        var previousPage = NoPage;
        var olderPage = NoPage;

        // The next page, claimed while this lane's last request was in flight (a backlog), with the lane's slot: the lane owns
        // both until it sends the page or gives it back (AbandonAsync).
        ClaimedAhead? ahead = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            // Only the stopping token ends this loop: a failure of one cycle is logged and waited out, never rethrown,
            // since a BackgroundService that throws stops the whole host by default.
            try
            {
                if (!leader && !backlog)
                {
                    await moreWork.WaitAsync(stoppingToken).ConfigureAwait(false);
                }

                var seen = signal.Version;
                if (ahead is not null && HeldFor() > TimeSpan.Zero)
                {
                    // Another lane's backoff, pause or Retry-After: rows claimed ahead are not held through it.
                    await AbandonAsync(ahead).ConfigureAwait(false);
                    ahead = null;
                }

                if (await WaitForResumeAsync(stoppingToken).ConfigureAwait(false) && ahead is not null)
                {
                    // The hold began between the look above and the wait: the page was held through it after all.
                    await AbandonAsync(ahead).ConfigureAwait(false);
                    ahead = null;
                }

                // At most one page's acknowledgements are still being written behind the page this lane sends next, so they
                // never fall further behind the sends (and their leases). A failed write backs the lane off, as a failed
                // claim does: its rows are still pending, and are claimed and sent again.
                var failedWrite = await olderPage.ConfigureAwait(false);
                olderPage = NoPage;
                if (previousPage.IsCompleted)
                {
                    // The last page's writes are done: a failure among them backs off now, not a page later.
                    failedWrite = failedWrite > TimeSpan.Zero ? failedWrite : previousPage.Result;
                    previousPage = NoPage;
                }

                var pageInFlight = !previousPage.IsCompleted;
                var handed = ahead;
                ahead = null;
                LaneStep step;
                if (failedWrite > TimeSpan.Zero)
                {
                    await AbandonAsync(handed).ConfigureAwait(false);
                    step = new LaneStep(failedWrite, false);
                }
                else
                {
                    step = await RunOnceAsync(leader, previousPage, handed, stoppingToken).ConfigureAwait(false);
                    ahead = step.Ahead;
                }

                if (step.Acknowledged is { } page)
                {
                    olderPage = previousPage;
                    previousPage = page;
                }
                else if (step.EmptyClaim && pageInFlight)
                {
                    // The last page's users were in flight during the claim: their newer rows, and the page's own should its
                    // write fail, can be claimed once it is written. Claim again then instead of waiting for a poll or a nudge.
                    var failed = await previousPage.ConfigureAwait(false);
                    previousPage = NoPage;
                    if (failed == TimeSpan.Zero)
                    {
                        continue;
                    }

                    step = new LaneStep(failed, false);
                }

                unexpectedFailures = 0;
                backlog = (step.FullClaim && step.Wait == TimeSpan.Zero && limiter.NetworkIsTheWait) || ahead is not null;

                if (leader && step.Wait > TimeSpan.Zero)
                {
                    await WaitAsync(seen, step.Wait, stoppingToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                backlog = false;
                var pause = RetrySchedule.Delay(++unexpectedFailures, options.RetryBaseDelay, options.RetryMaxDelay);
                Log.DispatcherFailedUnexpectedly(logger, ex, contextName, HumanDuration.Format(pause));
                try
                {
                    await Task.Delay(pause, time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
            }
        }

        // Rows claimed ahead go back at once (PostgreSQL: released, not left leased until their lease ends).
        await AbandonAsync(ahead).ConfigureAwait(false);

        // What ThriveStack accepted is recorded before the dispatcher stops: the last page's writes come after all earlier ones.
        await previousPage.ConfigureAwait(false);
    }

    /// <summary>A page with nothing left to write.</summary>
    private static readonly Task<TimeSpan> NoPage = Task.FromResult(TimeSpan.Zero);

    /// <summary>
    /// Claims and ships one page (or ships <paramref name="ahead"/>, claimed during the lane's last page with the slot it
    /// keeps); says how long to wait before the next (zero: go on at once), whether the claim was full, what completes once
    /// the page's acknowledgements are written (they go on while the lane claims its next page), and the next page with
    /// the lane's slot when it was claimed while this one's last request was in flight.
    /// </summary>
    private async Task<LaneStep> RunOnceAsync(bool leader, Task<TimeSpan> previousPage, ClaimedAhead? ahead, CancellationToken stoppingToken)
    {
        // The slot comes before the claim: a lane waiting for its turn holds no rows. A page claimed ahead comes with the
        // slot its lane kept, so it never waits for one; when the limit has dropped below the slots held, the page goes
        // back with the slot and this lane waits its turn like the others.
        var permit = ahead?.Permit ?? new SendPermit(limiter);
        var keepPermit = false;
        try
        {
            if (ahead is not null && limiter.OverLimit)
            {
                await AbandonAsync(ahead).ConfigureAwait(false);
                ahead = null;
            }

            try
            {
                await permit.AcquireAsync(stoppingToken).ConfigureAwait(false);
            }
            catch
            {
                await AbandonAsync(ahead).ConfigureAwait(false);
                throw;
            }

            if (HeldFor() is var held && held > TimeSpan.Zero)
            {
                // Another lane's backoff, pause or Retry-After began while this one waited for its slot.
                await AbandonAsync(ahead).ConfigureAwait(false);
                return new LaneStep(held, false);
            }

            var step = await ShipAsync(leader, previousPage, ahead?.Page, permit, stoppingToken).ConfigureAwait(false);
            keepPermit = step.Ahead is not null;
            return step;
        }
        finally
        {
            if (!keepPermit)
            {
                permit.Dispose();
            }
        }
    }

    /// <summary>Ships the page (claimed now, or ahead) on the lane's slot; see <see cref="RunOnceAsync"/>.</summary>
    private async Task<LaneStep> ShipAsync(bool leader, Task<TimeSpan> previousPage, Task<ClaimedPage>? ahead, SendPermit permit, CancellationToken stoppingToken)
    {
        ClaimedPage? page = null;
        Task<ClaimedPage>? next = null;
        Task<TimeSpan>? finishing = null;
        DispatchCycle? cycle = null;
        try
        {
            page = await (ahead ?? ClaimPageAsync(leader, stoppingToken)).ConfigureAwait(false);
            if (page.Rows.Count == 0)
            {
                return new LaneStep(options.PollInterval, false) { EmptyClaim = true };
            }

            var fullClaim = page.Full;
            var failuresBeforeSends = OutboxFailuresSoFar();
            if (fullClaim && moreWork.CurrentCount == 0 && limiter.NetworkIsTheWait)
            {
                // A full page suggests more: wake one more lane now, before this page's sends, which wakes the next if its
                // page is full too. The limiter's slots, not this, pace how many send at once. Lanes hide the network's
                // round trip; when a claim takes longer than a request, the database is the wait and one lane does the work.
                moreWork.Release();
            }

            // A full page suggests more: the next page is claimed while this one's last request is in flight, so the claim
            // costs the lane no time of its own (the pipe does not run dry between a lane's pages). The claim skips this
            // page's users, which are still in flight, as another lane's claim would. Off the lane's thread: the send must not
            // wait for a claim that completes synchronously.
            Action? claimAhead = fullClaim
                ? () => next ??= Task.Run(() => ClaimPageAsync(leader, stoppingToken), CancellationToken.None)
                : null;
            cycle = new DispatchCycle(page.Store, client, options, time, metrics, logger, contextName, page.LeaseId, evidence, limiter, permit, () => HeldFor() > TimeSpan.Zero, previousPage, writes, claimAhead);
            await cycle.RunAsync(page.Rows, page.LeaseEnd, stoppingToken, abortSends.Token).ConfigureAwait(false);
            var wait = cycle.Result switch
            {
                CycleResult.Unauthorized or CycleResult.Misconfigured => Paused(cycle.Result, cycle.LastFailure!, cycle.LastFailureRequest),
                CycleResult.Transient => Failed(cycle.LastFailure!, cycle.LastFailureRequest),
                _ when cycle.Accepted > 0 => Succeeded(),
                _ => TimeSpan.Zero,
            };

            // The page's context and its users' places in flight are held until its acknowledgements are written.
            finishing = FinishPageAsync(cycle.Acknowledged, cycle.Accepted > 0, failuresBeforeSends, page.Scope, page.ReadClaim);
            var step = new LaneStep(wait, fullClaim, finishing);
            if (wait == TimeSpan.Zero && next is not null)
            {
                // The next page goes on to the lane with its slot; after a failure or a pause it is given back (below).
                step = step with { Ahead = new ClaimedAhead(next, permit) };
                next = null;
            }

            return step;
        }
        catch (Exception ex) when (IsDatabaseFailure(ex) && !stoppingToken.IsCancellationRequested)
        {
            lock (stateGate)
            {
                // During the cycle the database is only written (acknowledgements, releases, dead letters): on SQLite a read
                // claim that goes through then does not end the outage, a write does (see OutboxReachable).
                writeFailing |= cycle is not null;
                return new LaneStep(OutboxFailedLocked(ex), false);
            }
        }
        finally
        {
            await AbandonPageAsync(next).ConfigureAwait(false);
            if (finishing is null && page is not null)
            {
                // A failure left acknowledgements running on this context: they end before it is disposed, and before the
                // page's users may be claimed again (every row is acknowledged, released or left pending by then).
                if (cycle is not null)
                {
                    await cycle.Acknowledged.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }

                if (page.Rows.Count > 0)
                {
                    PageDone(page.ReadClaim);
                }

                await page.Scope.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Claims a page on a context of its own (held until the page's acknowledgements are written), on the claims' thread.
    /// The leader's housekeeping, when due, goes first on the writes' thread (its cleanup of delivered rows is a loop of
    /// deletes): the other lanes' claims do not queue behind it. Throws what the database throws; the context is disposed then.
    /// </summary>
    private async Task<ClaimedPage> ClaimPageAsync(bool leader, CancellationToken stoppingToken)
    {
        var scope = scopes.CreateAsyncScope();
        try
        {
            var store = new OutboxStore(scope.ServiceProvider.GetRequiredService<TContext>(), owner);
            var setUp = false;
            if (leader && HousekeepingDue())
            {
                await writes.RunAsync(async () =>
                {
                    await store.SetUpConnectionAsync(stoppingToken).ConfigureAwait(false);
                    await HousekeepingAsync(store, stoppingToken).ConfigureAwait(false);
                }).ConfigureAwait(false);
                setUp = true;
            }

            return await claims.RunAsync(() => ClaimOnAsync(scope, store, setUp, stoppingToken)).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            if (IsDatabaseFailure(ex))
            {
                // Counted now, so no success begun before it ends the outage, though a claim made ahead is reported (or,
                // abandoned, not at all) only when its lane gets to it.
                Interlocked.Increment(ref outboxFailuresEver);
            }

            await scope.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task<ClaimedPage> ClaimOnAsync(AsyncServiceScope scope, OutboxStore store, bool setUp, CancellationToken stoppingToken)
    {
        var failuresBefore = OutboxFailuresSoFar();
        if (!setUp)
        {
            await store.SetUpConnectionAsync(stoppingToken).ConfigureAwait(false);
        }

        var leaseId = Guid.NewGuid();
        var claimSize = ClaimSize;
        var (rows, leaseEnd, claimStarted) = store.ClaimsByReading
            ? await ClaimByReadingAsync(store, leaseId, claimSize, stoppingToken).ConfigureAwait(false)
            : await ClaimByLeasingAsync(store, leaseId, claimSize, stoppingToken).ConfigureAwait(false);
        if (rows.Count < claimSize && Volatile.Read(ref pagesOutstanding) > 0)
        {
            Volatile.Write(ref skippedBehindPages, 1);
        }

        if (rows.Count > 0)
        {
            Interlocked.Increment(ref pagesOutstanding);
            Interlocked.Exchange(ref lastRowsClaimedTicks, time.GetUtcNow().UtcTicks);
        }

        limiter.RecordClaim(claimStarted);

        // A claim by reading proves reads work, not that an earlier failed write would now go through (a full disk, a
        // lock held past busy_timeout): that outage ends with a successful write, so it is reported once, not per page.
        OutboxReachable(wrote: !store.ClaimsByReading, failuresBefore);
        return new ClaimedPage(scope, store, leaseId, rows, leaseEnd, rows.Count >= claimSize);
    }

    /// <summary>
    /// Gives back a page claimed ahead and not sent (the lane waits, fails or stops): its rows are released (PostgreSQL and
    /// others; SQLite's read claim holds nothing in the database), its users leave flight, its context is disposed. Never
    /// throws: a claim that failed held nothing, and the lane's next claim meets and reports the same failure.
    /// </summary>
    private async Task AbandonAsync(ClaimedAhead? ahead)
    {
        if (ahead is null)
        {
            return;
        }

        try
        {
            await AbandonPageAsync(ahead.Page).ConfigureAwait(false);
        }
        finally
        {
            ahead.Permit.Dispose();
        }
    }

    /// <summary>Gives back a page claimed ahead (see <see cref="AbandonAsync"/>), without its slot.</summary>
    private async Task AbandonPageAsync(Task<ClaimedPage>? ahead)
    {
        if (ahead is null)
        {
            return;
        }

        ClaimedPage page;
        try
        {
            page = await ahead.ConfigureAwait(false);
        }
        catch (Exception)
        {
            return;
        }

        try
        {
            if (page.Rows.Count > 0)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), time);
                await page.Store.ReleaseAsync([.. page.Rows.Select(r => r.Id)], page.LeaseId, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The lease then ends by itself, and the rows are claimed again after it.
            Log.ReleaseFailed(logger, ex, page.Rows.Count, contextName);
        }
        finally
        {
            if (page.Rows.Count > 0)
            {
                PageDone(page.ReadClaim);
            }

            await page.Scope.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for a page's acknowledgements, then frees its users (SQLite's read claim) and its context. Never throws: a
    /// failed acknowledgement leaves its rows pending, to be claimed and sent again (at least once); it is reported as a
    /// failure of the outbox (or logged, when not the database's), and the backoff it returns holds the lane before its
    /// next claim but one (see RunLaneAsync).
    /// </summary>
    private async Task<TimeSpan> FinishPageAsync(Task acknowledged, bool wrote, long failuresBefore, AsyncServiceScope scope, List<ClaimedRow> rowsInFlight)
    {
        var backoff = TimeSpan.Zero;
        try
        {
            await acknowledged.ConfigureAwait(false);
            if (wrote)
            {
                OutboxReachable(wrote: true, failuresBefore);
            }
        }
        catch (Exception ex) when (IsDatabaseFailure(ex))
        {
            lock (stateGate)
            {
                writeFailing = true;
                backoff = OutboxFailedLocked(ex);
            }
        }
        catch (Exception ex)
        {
            backoff = RetrySchedule.Delay(1, options.RetryBaseDelay, options.RetryMaxDelay);
            Log.DispatcherFailedUnexpectedly(logger, ex, contextName, HumanDuration.Format(backoff));
        }

        PageDone(rowsInFlight);
        try
        {
            await scope.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Disposing a context does not fail in practice; if it did, the page's writes are done and the lane goes on.
            Log.DispatcherFailedUnexpectedly(logger, ex, contextName, HumanDuration.Format(TimeSpan.Zero));
        }

        return backoff;
    }

    /// <summary>
    /// A page is finished: its users leave flight (SQLite), and a lane whose claim came back short meanwhile is woken, since
    /// the rows it skipped for those users (newer events, or the page's own after a failed write) can be claimed now.
    /// </summary>
    private void PageDone(List<ClaimedRow> rowsInFlight)
    {
        lock (usersInFlight)
        {
            foreach (var row in rowsInFlight)
            {
                usersInFlight.Remove(row.UserId);
            }
        }

        Interlocked.Decrement(ref pagesOutstanding);
        if (Interlocked.Exchange(ref skippedBehindPages, 0) == 1)
        {
            signal.Notify();
        }
    }

    /// <summary>Claims by leasing each row (PostgreSQL and others); Started: when its statement began.</summary>
    private async Task<(List<ClaimedRow> Rows, DateTime LeaseEnd, long Started)> ClaimByLeasingAsync(OutboxStore store, Guid leaseId, int claimSize, CancellationToken stoppingToken)
    {
        var started = time.GetTimestamp();
        var now = time.GetUtcNow().UtcDateTime;
        var leaseEnd = now + options.LeaseDuration;
        var rows = await store.ClaimAsync(leaseId, owner, now, leaseEnd, claimSize, stoppingToken, options.RetryMaxDelay).ConfigureAwait(false);
        RefreshStaleStatistics(store, rows.Count, claimSize);
        return (rows, leaseEnd, started);
    }

    /// <summary>How often at most this dispatcher refreshes the planner's statistics for the outbox: autovacuum's own pace.</summary>
    private static readonly TimeSpan AnalyzeInterval = TimeSpan.FromMinutes(1);

    /// <summary>When this dispatcher last refreshed them (a timestamp of its clock), or <see cref="long.MinValue"/>.</summary>
    private long lastAnalyze = long.MinValue;

    /// <summary>
    /// A full claim of more rows than PostgreSQL's planner believes the outbox holds pending shows its statistics stale:
    /// autovacuum analyzes the outbox when it sees it changed, often while it is nearly empty, and a burst (a backfill, an
    /// outage's backlog) then brings thousands of rows. Planned for a table of a few rows, claims compared rows with each
    /// other, up to seconds each, and delivery stalled until autovacuum's next ANALYZE a minute or more later. The
    /// dispatcher refreshes them at once, at most once a minute, beside the claim on a connection of its own (the page's
    /// lease is already running), and says whether the server did (it skips the table for a role that does not own it, or
    /// while autovacuum works on it).
    /// </summary>
    private void RefreshStaleStatistics(OutboxStore store, int claimed, int claimSize)
    {
        if (claimed < claimSize || store.PlannerRowEstimate is not { } estimate || estimate < 0 || estimate >= claimed || !store.CanAnalyze)
        {
            return;
        }

        var last = Interlocked.Read(ref lastAnalyze);
        if ((last != long.MinValue && time.GetElapsedTime(last) < AnalyzeInterval)
            || Interlocked.CompareExchange(ref lastAnalyze, time.GetTimestamp(), last) != last)
        {
            // Refreshed lately, or another lane is refreshing them now.
            return;
        }

        Volatile.Write(ref statisticsRefresh, RefreshStatisticsAsync(estimate, claimed));
    }

    /// <summary>The last refresh of the planner's statistics, awaited when the dispatcher stops; never faults.</summary>
    private Task statisticsRefresh = Task.CompletedTask;

    private async Task RefreshStatisticsAsync(double estimate, int claimed)
    {
        await Task.Yield();
        var started = time.GetTimestamp();
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var store = new OutboxStore(scope.ServiceProvider.GetRequiredService<TContext>(), owner);
            var after = await store.AnalyzeAsync(abortSends.Token).ConfigureAwait(false);
            if (after is { } refreshed && refreshed >= claimed)
            {
                Log.OutboxStatisticsRefreshed(logger, contextName, estimate, refreshed, claimed, time.GetElapsedTime(started).TotalMilliseconds);
            }
            else
            {
                Log.OutboxStatisticsNotRefreshed(logger, contextName, estimate, claimed);
            }
        }
        catch (Exception ex)
        {
            // Never the dispatcher's concern: autovacuum refreshes them later in any case.
            Log.OutboxStatisticsRefreshFailed(logger, ex, contextName);
        }
    }

    // SQLite: the outbox-wide lease (renewed once a quarter of it has passed, so most claims write nothing), then a read of
    // rows whose users have no page in flight here. One lane claims at a time: a read claims nothing in the database.
    // Started: when the lane's turn came. The wait for it is the lanes' own queue, not the database's: counted, it read as
    // a database growing slow and lowered the limit whenever several lanes' claims met (their pages end together).
    private async Task<(List<ClaimedRow> Rows, DateTime LeaseEnd, long Started)> ClaimByReadingAsync(OutboxStore store, Guid leaseId, int claimSize, CancellationToken stoppingToken)
    {
        await claimGate.WaitAsync(stoppingToken).ConfigureAwait(false);
        var started = time.GetTimestamp();
        try
        {
            var now = time.GetUtcNow().UtcDateTime;
            var left = outboxLeaseEnd - now;
            if (left < options.LeaseDuration * 0.75 || left > options.LeaseDuration)
            {
                if (now < outboxLeaseRetryAt)
                {
                    return ([], now, started);
                }

                var end = now + options.LeaseDuration;
                if (!await store.HoldLeaseAsync(now, end, stoppingToken).ConfigureAwait(false))
                {
                    outboxLeaseEnd = DateTime.MinValue;
                    outboxLeaseRetryAt = now + options.PollInterval;
                    if (!standingBy)
                    {
                        standingBy = true;
                        Log.StandingBy(logger, contextName);
                    }

                    return ([], now, started);
                }

                if (standingBy)
                {
                    standingBy = false;
                    Log.OutboxLeaseTaken(logger, contextName);
                }

                outboxLeaseEnd = end;
            }

            string[] inFlight;
            lock (usersInFlight)
            {
                inFlight = [.. usersInFlight];
            }

            var rows = await store.ClaimAsync(leaseId, owner, now, outboxLeaseEnd, claimSize, stoppingToken, options.RetryMaxDelay, inFlight).ConfigureAwait(false);
            lock (usersInFlight)
            {
                foreach (var row in rows)
                {
                    usersInFlight.Add(row.UserId);
                }
            }

            return (rows, outboxLeaseEnd, started);
        }
        finally
        {
            claimGate.Release();
        }
    }

    // A stopping dispatcher gives the outbox-wide lease back, so an instance beside it (or the next deploy) takes over at once.
    private async Task ReleaseOutboxLeaseAsync()
    {
        if (outboxLeaseEnd == DateTime.MinValue)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var store = new OutboxStore(scope.ServiceProvider.GetRequiredService<TContext>(), owner);
            var now = time.GetUtcNow().UtcDateTime;
            await claims.RunAsync(() => store.ReleaseLeaseAsync(now, timeout.Token)).ConfigureAwait(false);
            outboxLeaseEnd = DateTime.MinValue;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The lease then ends by itself.
            Log.OutboxLeaseReleaseFailed(logger, ex, contextName);
        }
    }

    private TimeSpan HeldFor()
    {
        lock (stateGate)
        {
            return resumeAt - time.GetUtcNow();
        }
    }

    /// <summary>Waits while every lane is held; true when it waited.</summary>
    private async Task<bool> WaitForResumeAsync(CancellationToken stoppingToken)
    {
        var wait = HeldFor();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, stoppingToken).ConfigureAwait(false);
        }

        // A request sent after the failure went through during the hold: the episode ends when the hold is over, before
        // any further answer (there may be nothing left to send), so the health check does not report a pause that is over.
        // Every lane passes here before it claims, the leader also after waiting out its own hold.
        lock (stateGate)
        {
            EndRecoveredEpisodeLocked();
        }

        return wait > TimeSpan.Zero;
    }

    // Holds every lane until then; a later resume time set by another lane wins.
    private TimeSpan HoldAllLanes(TimeSpan wait)
    {
        var until = time.GetUtcNow() + wait;
        if (until > resumeAt)
        {
            resumeAt = until;
        }

        return resumeAt - time.GetUtcNow();
    }

    // What a database or its connection throws; anything else escaping a cycle is a bug, reported as such by the loop.
    private static bool IsDatabaseFailure(Exception exception)
    {
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            if (ex is DbException or DbUpdateException or TimeoutException or IOException or SocketException)
            {
                return true;
            }
        }

        return false;
    }

    private bool HousekeepingDue()
    {
        var now = time.GetUtcNow();
        return now - lastStatistics >= StatisticsInterval || (options.DeliveredRetention > TimeSpan.Zero && now - lastCleanup >= TimeSpan.FromMinutes(1));
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

    // A delivery ends an outage's backoff or a pause only once the hold is over and for a request sent after the failure
    // that set it: a request already in flight when another lane's failure held every lane describes ThriveStack (or the
    // token) as it was then, and must not log "resumed" or clear the health check while every lane still waits.
    private TimeSpan Succeeded()
    {
        lock (stateGate)
        {
            EndRecoveredEpisodeLocked();
            return TimeSpan.Zero;
        }
    }

    // A request sent after the latest failure or refusal that set or joined the hold went through (perhaps while every
    // lane was held, when it could not end the episode): once the hold is over, the episode is. A failure after that
    // starts a new episode at the base delay, so a server that refuses one request in a round and takes the others is
    // never backed off as far as RetryMaxDelay.
    private void EndRecoveredEpisodeLocked()
    {
        if (resumeAt <= time.GetUtcNow() && evidence.LastDelivered > heldByRequest)
        {
            SucceededLocked();
        }
    }

    private TimeSpan SucceededLocked()
    {
        var wasFailing = sendFailures > 0;
        var wasPaused = status.AuthPausedSince is not null;
        sendFailures = 0;

        // A failure of a request sent after the delivery that ends the episode is news, even if that request was sent
        // before the last step: ThriveStack took a later request meanwhile.
        steppedAt = Math.Min(steppedAt, evidence.LastDelivered);
        if (wasPaused)
        {
            status.AuthPausedSince = null;
            status.PauseMessage = null;
            consecutivePauses = 0;
        }

        if (wasFailing || wasPaused)
        {
            // One line for both when a pause and an outage end together; the louder level wins.
            var now = time.GetUtcNow();
            var backoffLevel = wasFailing ? backoffLog.End(now) : LogLevel.None;
            var pauseLevel = wasPaused ? pauseLog.End(now) : LogLevel.None;
            Log.SendingResumed(logger, EpisodeLog.Louder(backoffLevel, pauseLevel), contextName);
        }

        return TimeSpan.Zero;
    }

    /// <summary>The endpoint as logs name it: scheme, host, port and path, without a query that could carry a secret.</summary>
    private string Endpoint => EndpointText.Of(options.Endpoint);

    // ThriveStack looks down: no row spent an attempt (see DispatchCycle); the whole dispatcher backs off, capped by
    // RetryMaxDelay even when the server asks for longer. One warning per outage (outages that recur: EpisodeLog).
    private TimeSpan Failed(SendResult failure, long request)
    {
        lock (stateGate)
        {
            if (WaitIfStale(failure, request) is { } wait)
            {
                return wait;
            }

            EndRecoveredEpisodeLocked();

            // Another lane saw the same outage and holds every lane already: one outage, one step of the backoff.
            heldByRequest = Math.Max(heldByRequest, request);
            var held = resumeAt - time.GetUtcNow();
            return held > TimeSpan.Zero && sendFailures > 0 ? held : FailedLocked(failure);
        }
    }

    // An answer that steps nothing: to a request sent before one that went through, or one already in flight when a
    // backoff or a pause last took its step, whenever its answer is read (after that hold is over too; a step is taken by
    // a request sent after the last). Null when the answer counts. The lane waits out the hold there is, if any.
    private TimeSpan? WaitIfStale(SendResult failure, long request)
    {
        var delivered = evidence.LastDelivered;
        if (request >= delivered && request > steppedAt)
        {
            return null;
        }

        // It moves nothing, heldByRequest included: a request sent after the failure that set the hold, delivered, still ends
        // the episode (a 503 of a request in flight when a 401 paused must not keep the pause on).
        var when = request < delivered ? "before one that went through" : "before sending last backed off or paused";
        Log.StaleFailureIgnored(logger, contextName, failure.Describe(), when);

        var held = resumeAt - time.GetUtcNow();
        return held > TimeSpan.Zero ? held : TimeSpan.Zero;
    }

    private TimeSpan FailedLocked(SendResult failure)
    {
        sendFailures++;
        steppedAt = evidence.Sent;
        var wait = RetrySchedule.Delay(sendFailures, options.RetryBaseDelay, options.RetryMaxDelay, failure.RetryAfter);
        if (sendFailures == 1)
        {
            var start = backoffLog.Begin(time.GetUtcNow());
            Log.SendingBackedOff(logger, EpisodeLog.LevelOf(start, LogLevel.Warning), contextName, failure.Describe(), EndpointHint(), HumanDuration.Format(wait));
            if (start == EpisodeStart.Announce)
            {
                Log.BackoffsRecur(logger, contextName, failure.Describe(), backoffLog.Recurrences, backoffLog.RecurringSince, HumanDuration.Format(backoffLog.Window));
            }
        }
        else if (backoffLog.Persists(time.GetUtcNow()))
        {
            // A recurring backoff that nothing sent after it ended for a whole window: an outage, not a refusal now and
            // then; news again.
            Log.SendingBackedOff(logger, LogLevel.Warning, contextName, failure.Describe(), EndpointHint(), HumanDuration.Format(wait));
        }

        return HoldAllLanes(wait);
    }

    // Never reached since the start, a connection that fails looks the same as a wrong host or port: say where it goes.
    private string EndpointHint() =>
        evidence.LastDelivered > 0 ? "" : $" (no request has gone through since the start: if this lasts, check Thrivestack:Endpoint, {Endpoint})";

    // A refused token or a wrong endpoint: every request would fail alike, so nothing is charged. One error per pause
    // (pauses that recur: EpisodeLog). A refusal answering a request sent before one that went through (another lane's,
    // sent later) describes the token as it was: it neither pauses nor logs above Debug (a token fixed while requests were
    // in flight; WaitIfStale). Its rows go back unsent.
    private TimeSpan Paused(CycleResult result, SendResult failure, long request)
    {
        lock (stateGate)
        {
            if (WaitIfStale(failure, request) is { } wait)
            {
                return wait;
            }

            EndRecoveredEpisodeLocked();
            heldByRequest = Math.Max(heldByRequest, request);
            var held = resumeAt - time.GetUtcNow();
            return held > TimeSpan.Zero && status.AuthPausedSince is not null ? held : PausedLocked(result, failure);
        }
    }

    private TimeSpan PausedLocked(CycleResult result, SendResult failure)
    {
        consecutivePauses++;
        steppedAt = evidence.Sent;
        var pause = RetrySchedule.Delay(consecutivePauses, options.RetryBaseDelay, options.RetryMaxDelay);
        if (status.AuthPausedSince is null)
        {
            var start = pauseLog.Begin(time.GetUtcNow());
            LogPause(result, failure, pause, EpisodeLog.LevelOf(start, LogLevel.Error));
            if (start == EpisodeStart.Announce)
            {
                Log.PausesRecur(logger, contextName, failure.Describe(), pauseLog.Recurrences, pauseLog.RecurringSince, HumanDuration.Format(pauseLog.Window));
            }

            // Published after the message: the health check reads them on another thread.
            status.AuthPausedSince = time.GetUtcNow();
        }
        else if (pauseLog.Persists(time.GetUtcNow()))
        {
            // A recurring pause that nothing sent after it ended for a whole window: a revoked token, a wrong endpoint
            // deployed; news again.
            LogPause(result, failure, pause, LogLevel.Error);
        }

        return HoldAllLanes(pause);
    }

    private void LogPause(CycleResult result, SendResult failure, TimeSpan pause, LogLevel level)
    {
        if (result == CycleResult.Misconfigured)
        {
            var endpoint = Endpoint;
            status.PauseMessage = $"Sending is paused: the endpoint {endpoint} answers as ThriveStack never does ({failure.Describe()}).";
            Log.SendingMisconfigured(logger, level, endpoint, failure.Describe(), contextName, HumanDuration.Format(pause));
        }
        else
        {
            status.PauseMessage = "Sending is paused: ThriveStack refused the API token.";
            Log.SendingPaused(logger, level, failure.Describe(), contextName, HumanDuration.Format(pause));
        }
    }

    private long OutboxFailuresSoFar() => Interlocked.Read(ref outboxFailuresEver);

    /// <summary>
    /// The outbox answered: <paramref name="wrote"/> when a write went through, else a read only. An operation that began
    /// before a failure another lane met (<paramref name="failuresBefore"/> is behind) describes the database as it was
    /// then: a write already under way when the server went down may still commit after a claim failed, and taking that for
    /// a recovery would log the one outage twice (and reset its backoff). The next operation begun since tells.
    /// </summary>
    private void OutboxReachable(bool wrote, long failuresBefore)
    {
        lock (stateGate)
        {
            if (failuresBefore != Interlocked.Read(ref outboxFailuresEver))
            {
                return;
            }

            if (wrote)
            {
                writeFailing = false;
            }
            else if (writeFailing)
            {
                return;
            }

            OutboxReachableLocked();
        }
    }

    private void OutboxReachableLocked()
    {
        outboxFailures = 0;
        if (status.OutboxUnavailableSince is { } since)
        {
            status.OutboxUnavailableSince = null;
            status.OutboxError = null;
            Log.OutboxRecovered(logger, contextName, HumanDuration.Format(time.GetUtcNow() - since));
        }
    }

    // One error per outage: logged when the outbox becomes unreachable, then quiet until it recovers.
    private TimeSpan OutboxFailedLocked(Exception exception)
    {
        if (status.OutboxUnavailableSince is null)
        {
            status.OutboxUnavailableSince = time.GetUtcNow();
            Log.OutboxUnavailable(logger, exception, contextName);
        }

        status.OutboxError = exception.GetType().Name;
        outboxFailures++;
        Interlocked.Increment(ref outboxFailuresEver);
        return RetrySchedule.Delay(outboxFailures, TimeSpan.FromMilliseconds(250), options.PollInterval * 5);
    }

    private async Task WaitAsync(long seen, TimeSpan wait, CancellationToken stoppingToken)
    {
        // A nudge cuts a poll wait short, never a backoff: during an outage commits must not hammer ThriveStack.
        bool backingOff;
        lock (stateGate)
        {
            backingOff = status.AuthPausedSince is not null || sendFailures > 0 || outboxFailures > 0;
        }

        if (backingOff)
        {
            await Task.Delay(wait, time, stoppingToken).ConfigureAwait(false);
            return;
        }

        using var timerCancellation = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var timer = Task.Delay(wait, time, timerCancellation.Token);
        var nudge = signal.WaitAsync(seen);
        var woken = await Task.WhenAny(timer, nudge).ConfigureAwait(false);
        await timerCancellation.CancelAsync().ConfigureAwait(false);
        stoppingToken.ThrowIfCancellationRequested();
        if (woken == nudge && time.GetUtcNow().UtcTicks - Interlocked.Read(ref lastRowsClaimedTicks) < BusyWindow.Ticks)
        {
            // The app is committing often: linger a moment, so the next claim and acknowledgement carry several commits'
            // rows instead of two writes per commit competing with the app's own (SQLite has one writer at a time).
            // A commit after a quiet spell is claimed at once.
            await Task.Delay(Linger, time, stoppingToken).ConfigureAwait(false);
        }
    }

    private readonly record struct LaneStep(TimeSpan Wait, bool FullClaim, Task<TimeSpan>? Acknowledged = null)
    {
        /// <summary>The claim found no row it could take.</summary>
        public bool EmptyClaim { get; init; }

        /// <summary>The lane's next page, claimed while this one's last request was in flight, and its slot; the lane sends or abandons it.</summary>
        public ClaimedAhead? Ahead { get; init; }
    }

    /// <summary>A page claimed ahead and the slot its lane keeps for it (given back with the page).</summary>
    private sealed record ClaimedAhead(Task<ClaimedPage> Page, SendPermit Permit);

    /// <summary>A lane's claimed page: its own context (<paramref name="Scope"/>), rows and lease.</summary>
    private sealed record ClaimedPage(AsyncServiceScope Scope, OutboxStore Store, Guid LeaseId, List<ClaimedRow> Rows, DateTime LeaseEnd, bool Full)
    {
        /// <summary>The users this dispatcher holds in flight for the page (SQLite's read claim); none when rows are leased.</summary>
        public List<ClaimedRow> ReadClaim => Store.ClaimsByReading ? Rows : [];
    }
}
