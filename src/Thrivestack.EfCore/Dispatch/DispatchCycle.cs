using System.Buffers;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// Ships one claimed page: coalesce per user, dead-letter what can never fit, pack batches, send them in
/// order and acknowledge each by lease. A transient failure blocks the rest of that user's rows, so no
/// newer event of a user overtakes an older one waiting for its retry.
/// </summary>
internal sealed class DispatchCycle(
    OutboxStore store,
    ThrivestackClient client,
    ThrivestackOptions options,
    TimeProvider time,
    ThrivestackMetrics metrics,
    ILogger logger,
    string contextName,
    Guid leaseId)
{
    private readonly HashSet<string> blockedUsers = [];
    private readonly HashSet<long> settled = [];

    /// <summary>What the page ended with, for the dispatcher's pacing.</summary>
    public CycleResult Result { get; private set; } = CycleResult.Completed;

    public SendResult? LastFailure { get; private set; }

    public int Delivered { get; private set; }

    public async Task RunAsync(List<ClaimedRow> rows, DateTime leaseEnd, CancellationToken cancellationToken)
    {
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

            foreach (var batch in batches)
            {
                // Never start a send that could outlive the lease: give the rest back and claim again.
                if (Result != CycleResult.Completed || time.GetUtcNow().UtcDateTime > leaseEnd - (options.LeaseDuration / 2))
                {
                    break;
                }

                await SendAsync(batch, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await ReleaseUnsettledAsync(events).ConfigureAwait(false);
        }
    }

    private async Task SendAsync(List<OutboxEvent> batch, CancellationToken cancellationToken)
    {
        batch = batch.Where(e => !blockedUsers.Contains(e.Row.UserId)).ToList();
        if (batch.Count == 0 || Result != CycleResult.Completed)
        {
            return;
        }

        var body = BatchBody.Write(batch, out var buffer);
        SendResult result;
        try
        {
            result = await client.SendAsync(body, batch.Count, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        switch (result.Outcome)
        {
            case SendOutcome.Delivered:
                await DeliveredAsync(batch, body.Length, result).ConfigureAwait(false);
                break;
            case SendOutcome.Rejected or SendOutcome.TooLarge when batch.Count > 1:
                Log.BatchSplit(logger, batch.Count, contextName, result.Describe());
                var half = batch.Count / 2;
                await SendAsync(batch[..half], cancellationToken).ConfigureAwait(false);
                await SendAsync(batch[half..], cancellationToken).ConfigureAwait(false);
                break;
            case SendOutcome.Rejected or SendOutcome.TooLarge:
                await DeadLetterAsync(batch, $"ThriveStack rejected the event: {result.Describe()}", countAttempt: true).ConfigureAwait(false);
                break;
            case SendOutcome.Unauthorized:
                LastFailure = result;
                Result = CycleResult.Unauthorized;
                break;
            default:
                LastFailure = result;
                Result = CycleResult.Transient;
                await RetryLaterAsync(batch, result).ConfigureAwait(false);
                break;
        }
    }

    // Acknowledgements take no cancellation token: what ThriveStack answered is recorded even while the host stops.
    private async Task DeliveredAsync(List<OutboxEvent> batch, int bytes, SendResult result)
    {
        var ids = batch.SelectMany(e => e.Ids).ToArray();
        var now = time.GetUtcNow().UtcDateTime;
        await store.DeliveredAsync(ids, leaseId, now, options.DeliveredRetention > TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
        settled.UnionWith(ids);
        Delivered += ids.Length;
        metrics.Delivered(ids.Length, contextName);
        Log.BatchDelivered(logger, batch.Count, bytes, contextName, result.ResponseId);
        if (result.Warnings is { Count: > 0 } warnings)
        {
            Log.ResponseWarnings(logger, string.Join(',', batch.Select(e => e.Row.Id)), string.Join("; ", warnings));
        }
    }

    private async Task RetryLaterAsync(List<OutboxEvent> batch, SendResult result)
    {
        var reason = result.Describe();
        Log.BatchRetried(logger, batch.Count, contextName, reason);
        foreach (var e in batch)
        {
            blockedUsers.Add(e.Row.UserId);
        }

        var exhausted = batch.Where(e => e.Row.Attempts + 1 >= options.MaxAttempts).ToList();
        if (exhausted.Count > 0)
        {
            await DeadLetterAsync(exhausted, $"gave up after {options.MaxAttempts} attempts; last error: {reason}", countAttempt: true).ConfigureAwait(false);
        }

        var now = time.GetUtcNow().UtcDateTime;
        foreach (var group in batch.Except(exhausted).GroupBy(e => e.Row.Attempts))
        {
            var ids = group.SelectMany(e => e.Ids).ToArray();
            var next = now + RetrySchedule.Delay(group.Key + 1, options.RetryBaseDelay, options.RetryMaxDelay, result.RetryAfter);
            await store.RetryLaterAsync(ids, leaseId, next, reason, CancellationToken.None).ConfigureAwait(false);
            settled.UnionWith(ids);
            metrics.Retried(ids.Length, contextName);
        }
    }

    private async Task DeadLetterAsync(List<OutboxEvent> events, string reason, bool countAttempt)
    {
        var ids = events.SelectMany(e => e.Ids).ToArray();
        await store.DeadLetterAsync(ids, leaseId, time.GetUtcNow().UtcDateTime, reason, countAttempt, CancellationToken.None).ConfigureAwait(false);
        settled.UnionWith(ids);
        metrics.DeadLettered(ids.Length, contextName);
        foreach (var e in events)
        {
            Log.EventDeadLettered(logger, e.Row.Id, e.Row.UserId, reason);
        }
    }

    // Rows not sent (shutdown, pause, a blocked user, the lease running low) go back without spending an attempt.
    private async Task ReleaseUnsettledAsync(List<OutboxEvent> events)
    {
        var ids = events.SelectMany(e => e.Ids).Where(id => !settled.Contains(id)).ToArray();
        if (ids.Length == 0)
        {
            return;
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await store.ReleaseAsync(ids, leaseId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Quietly: the lease ends by itself and the rows are claimed again then. If the outbox is down, the
            // dispatcher reports that once for the whole outage.
        }
    }
}
