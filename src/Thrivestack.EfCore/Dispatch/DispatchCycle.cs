using System.Buffers;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// Ships one claimed page: coalesce per user, dead-letter what can never fit, pack batches, send them in
/// order and acknowledge each by lease. A failure blocks the rest of that user's rows, so no newer event of
/// a user overtakes an older one waiting for its retry.
/// </summary>
/// <remarks>
/// <para>When a failure counts against an event (the rule for outages and for refusals caused by content):</para>
/// <para>
/// A failure counts against events only while others go through: when the dispatcher's previous request was
/// delivered, or (in an isolation) another part of the same batch is. A batch of several events refused with a
/// 403 or a 5xx (a WAF, or a server error that one event's content causes) is isolated as a 400 is: split in
/// halves, each half sent, down to single events; the single events that still fail spend an attempt (and are
/// dead-lettered after MaxAttempts), the innocent ones are delivered. It is isolated when others went through, or
/// when it is the cycle's last batch (nothing else to probe with: a bad event among good ones must not block them
/// forever). An isolation whose first ceil(log2(n)) + 1 requests all fail with nothing delivered is an outage, not
/// a bad event: it stops, and nothing in it spends an attempt. Any other failure without evidence that others go
/// through sets its batch aside (released, no attempt spent) and the next batch of other users is sent as a probe;
/// if that fails too, ThriveStack is taken to be down: the cycle ends, every row is released without spending an
/// attempt, and the whole dispatcher backs off (capped by RetryMaxDelay). So an outage never dead-letters, and costs
/// each lane at most two requests, or one bounded split, per backoff (a lane's requests already in flight when another
/// lane backs off are answered, and the lane then waits too).
/// 401 always pauses; 403 pauses unless it is isolated to some events. 429 never counts against an event (a rate
/// limit is never the event's fault). A 429 without Retry-After to a request that had others in flight beside it is the
/// concurrency limit at work: its rows go back unsent, the <see cref="ConcurrencyLimiter"/> lowers the limit and the cycle
/// goes on; alone, or with a Retry-After, it ends the cycle and the whole dispatcher waits.
/// </para>
/// <para>
/// Each send carries a deadline of nine tenths of the lease (<see cref="LeaseMargin"/> before its end): a request still
/// unanswered then is abandoned and its rows released while they are still ours, so no send goes on past its lease. An
/// acknowledgement that finds fewer rows leased to it than it names (the lease ended and another dispatcher took them)
/// counts only the rows it changed, and says so.
/// </para>
/// </remarks>
internal sealed class DispatchCycle(
    OutboxStore store,
    ThrivestackClient client,
    ThrivestackOptions options,
    TimeProvider time,
    ThrivestackMetrics metrics,
    ILogger logger,
    string contextName,
    Guid leaseId,
    SendEvidence evidence,
    ConcurrencyLimiter limiter,
    SendPermit permit,
    Func<bool> allLanesHeld,
    Task previousPage,
    DatabaseThread writes,
    Action? beforeLastSend = null)
{
    private readonly HashSet<string> blockedUsers = [];
    private readonly HashSet<long> settled = [];
    private DateTime leaseEnd;
    private readonly List<Suspect> suspects = [];
    private SendResult? unprovenFailure;
    private long unprovenFailureRequest;
    private long lastRequest;
    private bool moreBatchesFollow;
    private bool deliveredInCycle;
    private bool leaseRanOut;

    /// <summary>
    /// Writes the queued acknowledgements, a group per statement, until none is left (see <see cref="DeliveredAsync"/>);
    /// until this cycle's first delivery, the lane's previous page's, so a page that delivers nothing still completes after it.
    /// </summary>
    private Task acknowledging = previousPage;

    /// <summary>The lane's previous page's acknowledgements (never faults).</summary>
    private readonly Task earlierPage = previousPage;

    /// <summary>Delivered batches not yet acknowledged; guarded by <see cref="ackGate"/>, as is <see cref="ackRunning"/>.</summary>
    private List<Acknowledgement>? queuedAcks;
    private bool ackRunning;
    private readonly Lock ackGate = new();

    /// <summary>What the page ended with, for the dispatcher's pacing.</summary>
    public CycleResult Result { get; private set; } = CycleResult.Completed;

    public SendResult? LastFailure { get; private set; }

    /// <summary>The number of the request that answered <see cref="LastFailure"/> (<see cref="SendEvidence.NextRequest"/>).</summary>
    public long LastFailureRequest { get; private set; }

    /// <summary>Rows ThriveStack accepted in this cycle (their acknowledgements may still be being written).</summary>
    public int Accepted { get; private set; }

    /// <summary>
    /// Completes once every acknowledgement this cycle queued is written. <see cref="RunAsync"/> returns without waiting for
    /// it when every row of the page is settled, so the lane claims and sends its next page while the database writes
    /// these; the page's context and its users' places in flight are held until it completes. Faults when a write failed.
    /// </summary>
    public Task Acknowledged => acknowledging;

    /// <summary>
    /// Sends the page. <paramref name="stoppingToken"/> stops starting new sends; <paramref name="sendToken"/> aborts the
    /// request in flight (the host's shutdown timeout), so a request that was sent gets its answer recorded.
    /// </summary>
    public async Task RunAsync(List<ClaimedRow> rows, DateTime leaseEnd, CancellationToken stoppingToken, CancellationToken sendToken)
    {
        this.leaseEnd = leaseEnd;
        var events = OutboxEvent.Coalesce(rows);
        var oversized = new List<OutboxEvent>();
        var batches = BatchBody.Pack(events, options.MaxEventsPerBatch, options.MaxBatchBytes, oversized);
        try
        {
            foreach (var e in oversized)
            {
                var reason = $"the event is {BatchBody.SizeOf(e.Bytes, 1):N0} bytes as a request body, more than MaxBatchBytes ({options.MaxBatchBytes:N0}); it can never be sent";
                await DeadLetterAsync([e], reason, countAttempt: false).ConfigureAwait(false);
            }

            for (var i = 0; i < batches.Count; i++)
            {
                var batch = batches[i];
                moreBatchesFollow = i < batches.Count - 1;

                // Never start a send that could outlive the lease: give the rest back and claim again.
                if (Result != CycleResult.Completed || stoppingToken.IsCancellationRequested || leaseRanOut || LeaseRunsLow() || allLanesHeld())
                {
                    break;
                }

                try
                {
                    // The limit may have dropped since this lane took its slot: the lane over it waits its turn.
                    await permit.YieldIfOverLimitAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                if (!moreBatchesFollow)
                {
                    // The lane's next claim runs while this request is in flight.
                    beforeLastSend?.Invoke();
                }

                await SendAsync(batch, null, stoppingToken, sendToken).ConfigureAwait(false);
            }

            // A failure without evidence and no later delivery in this cycle: ThriveStack looks down.
            if (Result == CycleResult.Completed && unprovenFailure is { } failure && !deliveredInCycle)
            {
                Stop(failure);
            }

            await SettleSuspectsAsync().ConfigureAwait(false);
        }
        finally
        {
            // Rows to give back go through this context after the acknowledgements (one statement at a time on it). With
            // none, the acknowledgements may still be running when this returns (see Acknowledged).
            var unsettled = events.SelectMany(e => e.Ids).Where(id => !settled.Contains(id)).ToArray();
            if (unsettled.Length > 0)
            {
                try
                {
                    await acknowledging.ConfigureAwait(false);
                }
                finally
                {
                    await ReleaseAsync(unsettled).ConfigureAwait(false);
                }
            }
        }
    }

    private static bool Isolatable(SendResult result) => result.StatusCode is 403 or >= 500;

    /// <summary>How long before the lease's end a send is abandoned, so its rows can still be released as ours.</summary>
    private TimeSpan LeaseMargin => options.LeaseDuration / 10;

    /// <summary>Less than half the lease is left: a send started now could outlive it and another dispatcher send the rows too.</summary>
    private bool LeaseRunsLow() => time.GetUtcNow().UtcDateTime > leaseEnd - (options.LeaseDuration / 2);

    private static SendFeedback FeedbackOf(SendResult result) => result switch
    {
        { Outcome: SendOutcome.Delivered } => SendFeedback.Success,
        { StatusCode: 429 or 503 } or { TimedOut: true } => SendFeedback.Overload,
        _ => SendFeedback.Neutral,
    };

    private async Task SendAsync(List<OutboxEvent> batch, Isolation? isolation, CancellationToken stoppingToken, CancellationToken sendToken)
    {
        batch = batch.Where(e => !blockedUsers.Contains(e.Row.UserId)).ToList();
        if (batch.Count == 0 || Result != CycleResult.Completed || isolation is { Aborted: true } || stoppingToken.IsCancellationRequested
            || leaseRanOut || LeaseRunsLow() || allLanesHeld())
        {
            // Never start a send, a split's included, that could outlive the lease: the rows go back and are claimed again.
            return;
        }

        var body = BatchBody.Write(batch, out var buffer);
        SendResult? result = null;
        var start = limiter.StartSend();
        var request = evidence.NextRequest();
        lastRequest = request;
        try
        {
            result = await SendBeforeLeaseEndsAsync(body, batch.Count, request, sendToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);

            // Every StartSend is matched by one Record, also when the send throws (the host's shutdown aborting it).
            limiter.Record(start, result is null ? SendFeedback.Neutral : FeedbackOf(result));
        }

        if (result.StatusCode == 429 && result.RetryAfter is null && start.Slots > 1 && isolation is null)
        {
            // The concurrency limit at work (see remarks): the rows go back unsent, the limiter has slowed down.
            Log.BatchThrottled(logger, batch.Count, contextName, start.Sending);
            Block(batch);
            return;
        }

        if (leaseRanOut)
        {
            Block(batch);
            return;
        }

        switch (result.Outcome)
        {
            case SendOutcome.Delivered:
                evidence.Delivered(request);
                evidence.LastRequestSucceeded = true;
                deliveredInCycle = true;
                isolation?.Delivered = true;
                await DeliveredAsync(batch, body.Length, result).ConfigureAwait(false);
                break;
            case SendOutcome.Rejected or SendOutcome.TooLarge when batch.Count > 1:
                Log.BatchSplit(logger, batch.Count, contextName, result.Describe());
                var half = batch.Count / 2;
                await SendAsync(batch[..half], isolation, stoppingToken, sendToken).ConfigureAwait(false);
                await SendAsync(batch[half..], isolation, stoppingToken, sendToken).ConfigureAwait(false);
                break;
            case SendOutcome.Rejected or SendOutcome.TooLarge:
                await DeadLetterAsync(batch, $"ThriveStack rejected the event: {result.Describe()}", countAttempt: true).ConfigureAwait(false);
                break;
            case SendOutcome.Misconfigured:
            case SendOutcome.Unauthorized when result.StatusCode != 403:
                evidence.LastRequestSucceeded = false;
                Stop(result);
                break;
            default:
                await FailedAsync(batch, result, isolation, stoppingToken, sendToken).ConfigureAwait(false);
                break;
        }
    }

    private async Task<SendResult> SendBeforeLeaseEndsAsync(ReadOnlyMemory<byte> body, int eventCount, long request, CancellationToken sendToken)
    {
        var left = leaseEnd - LeaseMargin - time.GetUtcNow().UtcDateTime;
        using var deadline = new CancellationTokenSource(left > TimeSpan.Zero ? left : TimeSpan.Zero, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(sendToken, deadline.Token);
        try
        {
            return await client.SendAsync(body, eventCount, request, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !sendToken.IsCancellationRequested)
        {
            // Abandoned while the rows are still ours: they are released and sent again later, by us or another dispatcher.
            leaseRanOut = true;
            Log.SendOutlivedLease(logger, eventCount, contextName, HumanDuration.Format(options.LeaseDuration));
            return new SendResult(SendOutcome.Transient, null, "no answer before the lease ran out") { TimedOut = true };
        }
    }

    private async Task FailedAsync(List<OutboxEvent> batch, SendResult result, Isolation? isolation, CancellationToken stoppingToken, CancellationToken sendToken)
    {
        var othersGoThrough = isolation is not null || evidence.LastRequestSucceeded || deliveredInCycle;
        evidence.LastRequestSucceeded = false;
        Block(batch);
        if (isolation is not null && !isolation.Delivered && ++isolation.Failures > isolation.Limit)
        {
            isolation.Aborted = true;
            return;
        }

        // Without evidence, another batch of this cycle probes first (an outage then costs two requests, not a split).
        if (batch.Count > 1 && Isolatable(result) && (othersGoThrough || !moreBatchesFollow))
        {
            var own = isolation ?? new Isolation((int)Math.Ceiling(Math.Log2(batch.Count)) + 1);
            if (isolation is null)
            {
                Log.BatchIsolated(logger, batch.Count, contextName, result.Describe());
            }

            // Unblocked for the halves: the isolation itself decides per event.
            foreach (var e in batch)
            {
                blockedUsers.Remove(e.Row.UserId);
            }

            var half = batch.Count / 2;
            await SendAsync(batch[..half], own, stoppingToken, sendToken).ConfigureAwait(false);
            await SendAsync(batch[half..], own, stoppingToken, sendToken).ConfigureAwait(false);
            Block(batch.Where(e => !settled.Contains(e.Row.Id)));
            if (isolation is null && !own.Delivered && Result == CycleResult.Completed)
            {
                // Nothing in the batch goes through: not one bad event but an outage (or a refused token).
                Stop(result);
            }

            return;
        }

        if (!othersGoThrough || result.StatusCode == 429)
        {
            // No evidence that others go through: probe with the next batch; a second such failure means an outage.
            if (unprovenFailure is not null || result.StatusCode == 429)
            {
                Stop(result);
            }

            unprovenFailure = result;
            unprovenFailureRequest = lastRequest;
            return;
        }

        suspects.Add(new Suspect(batch, result, isolation));
    }

    private void Block(IEnumerable<OutboxEvent> batch)
    {
        foreach (var e in batch)
        {
            blockedUsers.Add(e.Row.UserId);
        }
    }

    private void Stop(SendResult failure)
    {
        LastFailure = failure;
        LastFailureRequest = ReferenceEquals(failure, unprovenFailure) ? unprovenFailureRequest : lastRequest;
        Result = failure.Outcome switch
        {
            SendOutcome.Misconfigured => CycleResult.Misconfigured,
            SendOutcome.Unauthorized => CycleResult.Unauthorized,
            _ => CycleResult.Transient,
        };
    }

    // Failures that others went through around spend an attempt; those of an isolation that delivered nothing do not.
    private async Task SettleSuspectsAsync()
    {
        foreach (var suspect in suspects)
        {
            if (suspect.Isolation is { Delivered: false })
            {
                continue;
            }

            await RetryLaterAsync(suspect.Events, suspect.Result).ConfigureAwait(false);
        }
    }

    // The acknowledgement is written while the next batch is sent (its rows are settled for this cycle at once). Batches
    // delivered while an acknowledgement is being written are acknowledged together by the next one, in one statement:
    // on a database that flushes every commit (SQLite with synchronous=FULL: a few milliseconds each) the writes then keep
    // up with the sends instead of pacing them. The next statement on this context waits for the queue, and the cycle ends
    // only once it is written.
    private async Task DeliveredAsync(List<OutboxEvent> batch, int bytes, SendResult result)
    {
        if (acknowledging.IsFaulted)
        {
            // A failed acknowledgement seen here ends the cycle (one that fails later ends it at the page's end, where the
            // dispatcher reports it); batches queued behind a failure are not written: their rows are sent again.
            await acknowledging.ConfigureAwait(false);
        }

        var ids = batch.SelectMany(e => e.Ids).ToArray();
        settled.UnionWith(ids);
        Accepted += ids.Length;
        lock (ackGate)
        {
            (queuedAcks ??= []).Add(new Acknowledgement(batch, ids, bytes, result));
            if (ackRunning)
            {
                return;
            }

            ackRunning = true;
        }

        acknowledging = AcknowledgeQueuedAsync();
    }

    // Acknowledgements take no cancellation token: what ThriveStack answered is recorded even while the host stops.
    private async Task AcknowledgeQueuedAsync()
    {
        await Task.Yield();

        // The lane's previous page may still be writing its own: a lane's acknowledgements are written one after another.
        await earlierPage.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        while (true)
        {
            List<Acknowledgement> group;
            lock (ackGate)
            {
                if (queuedAcks is not { Count: > 0 } queued)
                {
                    ackRunning = false;
                    return;
                }

                group = queued;
                queuedAcks = null;
            }

            try
            {
                await writes.RunAsync(() => AcknowledgeAsync(group)).ConfigureAwait(false);
            }
            catch
            {
                lock (ackGate)
                {
                    // Nothing queued behind a failure is written either, and no new writer starts (the cycle sees the
                    // failure at its next delivery, or the dispatcher at the page's end): like the failed group's, those
                    // rows stay pending and are claimed and sent again once the page's users leave flight (SQLite) or
                    // their lease ends (PostgreSQL).
                    queuedAcks = null;
                }

                throw;
            }
        }
    }

    private async Task AcknowledgeAsync(List<Acknowledgement> group)
    {
        var ids = group.Count == 1 ? group[0].Ids : group.SelectMany(a => a.Ids).ToArray();
        var now = time.GetUtcNow().UtcDateTime;
        var started = time.GetTimestamp();
        var acknowledged = await store.DeliveredAsync(ids, leaseId, now, options.DeliveredRetention > TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
        limiter.RecordAcknowledgement(started);
        acknowledged = CheckLease(ids.Length, acknowledged, "delivered");
        metrics.Delivered(acknowledged, contextName);
        foreach (var (batch, _, bytes, result) in group)
        {
            Log.BatchDelivered(logger, batch.Count, bytes, contextName, result.ResponseId);
            if (result.Warnings is { Count: > 0 } warnings)
            {
                Log.ResponseWarnings(logger, string.Join(',', batch.Select(e => e.Row.Id)), string.Join("; ", warnings));
            }
        }
    }

    private async Task RetryLaterAsync(List<OutboxEvent> batch, SendResult result)
    {
        var reason = result.Describe();
        var exhausted = batch.Where(e => e.Row.Attempts + 1 >= options.MaxAttempts).ToList();
        if (exhausted.Count > 0)
        {
            await DeadLetterAsync(exhausted, $"gave up after {options.MaxAttempts} attempts; last error: {reason}", countAttempt: true).ConfigureAwait(false);
        }

        var retried = batch.Except(exhausted).ToList();
        if (retried.Count > 0)
        {
            Log.BatchRetried(logger, retried.Count, contextName, reason);
        }

        var now = time.GetUtcNow().UtcDateTime;
        foreach (var group in retried.GroupBy(e => e.Row.Attempts))
        {
            var ids = group.SelectMany(e => e.Ids).ToArray();
            var next = now + RetrySchedule.Delay(group.Key + 1, options.RetryBaseDelay, options.RetryMaxDelay, result.RetryAfter);
            await acknowledging.ConfigureAwait(false);
            var changed = await writes.RunAsync(() => store.RetryLaterAsync(ids, leaseId, next, reason, CancellationToken.None)).ConfigureAwait(false);
            settled.UnionWith(ids);
            metrics.Retried(CheckLease(ids.Length, changed, "retried"), contextName);
        }
    }

    private async Task DeadLetterAsync(List<OutboxEvent> events, string reason, bool countAttempt)
    {
        var ids = events.SelectMany(e => e.Ids).ToArray();
        await acknowledging.ConfigureAwait(false);
        var now = time.GetUtcNow().UtcDateTime;
        var changed = await writes.RunAsync(() => store.DeadLetterAsync(ids, leaseId, now, reason, countAttempt, CancellationToken.None)).ConfigureAwait(false);
        settled.UnionWith(ids);
        metrics.DeadLettered(CheckLease(ids.Length, changed, "dead-lettered"), contextName);
        foreach (var e in events)
        {
            Log.EventDeadLettered(logger, e.Row.Id, e.Row.UserId, reason);
        }
    }

    // Rows no longer leased to this cycle were taken by another dispatcher after the lease ended: their fate is its to record.
    private int CheckLease(int named, int changed, string outcome)
    {
        if (changed < named)
        {
            metrics.LeaseLost(named - changed, contextName);
            Log.LeaseLostBeforeAcknowledgement(logger, named - changed, named, outcome, contextName);
        }

        return changed;
    }

    // Rows not sent or not charged (shutdown, pause, outage, a blocked user, the lease running low) go back without spending an attempt.
    private async Task ReleaseAsync(long[] ids)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), time);
        try
        {
            await store.ReleaseAsync(ids, leaseId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Only at Debug: the lease ends by itself and the rows are claimed again then. If the outbox is down, the
            // dispatcher reports that once for the whole outage.
            Log.ReleaseFailed(logger, ex, ids.Length, contextName);
        }
    }

    /// <summary>One split of a batch refused for its content; <see cref="Limit"/> failures before any delivery mean an outage.</summary>
    private sealed class Isolation(int limit)
    {
        public int Limit { get; } = limit;

        public int Failures { get; set; }

        public bool Delivered { get; set; }

        public bool Aborted { get; set; }
    }

    private sealed record Suspect(List<OutboxEvent> Events, SendResult Result, Isolation? Isolation);

    /// <summary>A delivered batch waiting for its acknowledgement.</summary>
    private sealed record Acknowledgement(List<OutboxEvent> Batch, long[] Ids, int Bytes, SendResult Result);
}
