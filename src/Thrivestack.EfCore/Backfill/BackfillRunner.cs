using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Backfill;

/// <summary>
/// One run of a backfill: takes the name's lock, then walks each mapped user type and each membership type in
/// key order, one short transaction per chunk that reads the rows, writes their events and moves the checkpoint.
/// </summary>
internal sealed class BackfillRunner
{
    private static readonly TimeSpan LockDuration = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FirstRoomWait = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan RenewInterval = LockDuration / 4;

    private readonly DbContext context;
    private readonly ThrivestackBackfillOptions options;
    private readonly IProgress<ThrivestackBackfillProgress>? progress;
    private readonly TimeProvider clock;
    private readonly ILogger logger;
    private readonly BackfillMetrics metrics;
    private readonly BackfillCheckpointStore store;
    private readonly OutboxTable outbox;
    private readonly List<BackfillPhase> phases;
    private readonly OutboxDialect dialect;

    /// <summary>Where the app's saves in progress are counted, on a database with one writer at a time; null elsewhere.</summary>
    private readonly OutboxSignal? yieldToSaves;
    private readonly string? lockOutbox;
    private readonly string owner;
    private readonly long started;
    private readonly BackfillChunkSizer sizer;
    private bool readBeforeLock;
    private long rereads;
    private long chunks;
    private long pendingAtLastCount;
    private long enqueuedSinceCount;
    private long usersEnqueued;
    private long membershipsEnqueued;
    private long processedUsers;
    private long processedMemberships;
    private long processedThisRun;
    private long total;
    private DateTime lastLog;

    private BackfillRunner(DbContext context, ThrivestackBackfillOptions options, IProgress<ThrivestackBackfillProgress>? progress)
    {
        this.context = context;
        this.options = options;
        this.progress = progress;
        var map = ModelMap.For(context.Model);
        outbox = map.RequireOutbox();
        BackfillCheckpointStore.RequireModel(context);
        var sql = context.GetService<ISqlGenerationHelper>();
        phases =
        [
            .. map.Users.Values.OrderBy(u => u.EntityType.Name, StringComparer.Ordinal).Select(u => BackfillPhase.ForUser(u, sql)),
            .. map.Memberships.Values.OrderBy(m => m.EntityType.Name, StringComparer.Ordinal).Select(m => BackfillPhase.ForMembership(m, sql)),
        ];
        clock = OptionsFacts.Of(context).Clock;
        logger = context.GetService<ILoggerFactory>().CreateLogger("Thrivestack.EfCore.Backfill");
        metrics = BackfillMetrics.For(context);
        dialect = OutboxDialect.For(context);
        yieldToSaves = dialect.BlocksOnAsync ? OptionsFacts.Of(context).Signal : null;
        // A lock request that waits also holds up every later writer of the table: give up after about one chunk's time.
        lockOutbox = dialect.LockOutboxSql(outbox, options.TargetChunkDuration, sql);
        owner = OutboxStore.NewOwner();
        store = new BackfillCheckpointStore(context, options.Name, owner);
        started = clock.GetTimestamp();
        sizer = new BackfillChunkSizer(options.ChunkSize, options.TargetChunkDuration);
        pendingAtLastCount = long.MaxValue / 2;
    }

    public static Task<ThrivestackBackfillResult> RunAsync(
        DbContext context, ThrivestackBackfillOptions options, IProgress<ThrivestackBackfillProgress>? progress, CancellationToken cancellationToken)
    {
        if (context.Database.CurrentTransaction is not null)
        {
            throw new InvalidOperationException(
                "BackfillThrivestackAsync runs one short transaction per chunk of its own; call it outside Database.BeginTransaction().");
        }

        if (context.ChangeTracker.Entries().Any())
        {
            throw new InvalidOperationException(
                "BackfillThrivestackAsync needs a context that tracks no entities (it reads with tracking and clears the change tracker after each chunk). Use a new context, for example from IDbContextFactory.");
        }

        // A save of this context that EF never reported the end of (another interceptor refused it) would still count as
        // in progress, and every chunk would wait for it: end it, as the context's next save would.
        SaveLifecycle.Abandon(context);
        return new BackfillRunner(context, options, progress).RunAsync(cancellationToken);
    }

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    private async Task<ThrivestackBackfillResult> RunAsync(CancellationToken cancellationToken)
    {
        var now = Now;
        await context.Database.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await store.AcquireAsync(now, now + LockDuration, cancellationToken).ConfigureAwait(false);
        }
        catch (DbException exception) when (MissingTable(exception) is { } missing)
        {
            await context.Database.CloseConnectionAsync().ConfigureAwait(false);
            throw missing;
        }
        catch
        {
            await context.Database.CloseConnectionAsync().ConfigureAwait(false);
            throw;
        }

        try
        {
            readBeforeLock = await dialect.CanReadBeforeLockAsync(context, outbox, cancellationToken).ConfigureAwait(false);
            if (options.Restart)
            {
                await store.ResetAsync(now, cancellationToken).ConfigureAwait(false);
            }

            var checkpoints = (await store.ReadAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(c => c.Entity, StringComparer.Ordinal);
            var resumed = checkpoints.Values.Any(c => c.Entity != BackfillCheckpoint.RunEntity && (c.Processed > 0 || c.CompletedAt is not null));
            var completedBefore = phases.Count > 0 && phases.All(p => checkpoints.TryGetValue(p.Name, out var c) && c.CompletedAt is not null);
            foreach (var phase in phases)
            {
                total += await phase.CountAsync(context, cancellationToken).ConfigureAwait(false);
                if (checkpoints.TryGetValue(phase.Name, out var done))
                {
                    if (phase.IsUser)
                    {
                        processedUsers += done.Processed;
                    }
                    else
                    {
                        processedMemberships += done.Processed;
                    }
                }
            }

            // Users saved since a completed run make the count larger than what it processed: nothing is left all the same.
            Log.BackfillStarted(
                logger,
                options.Name,
                context.GetType().Name,
                owner,
                completedBefore ? 0 : Math.Max(0, total - processedUsers - processedMemberships),
                total,
                completedBefore ? " (completed before: run it with Restart to enqueue everyone again)" : resumed ? " (resumed from its checkpoint)" : "");
            if (BackfillDispatcherCheck.IsUndispatched(context))
            {
                Log.BackfillNotDispatched(logger, options.Name, context.GetType().Name, options.MaxPendingEvents);
            }

            lastLog = Now;
            foreach (var phase in phases)
            {
                checkpoints.TryGetValue(phase.Name, out var checkpoint);
                if (checkpoint?.CompletedAt is not null)
                {
                    continue;
                }

                if (checkpoint is null)
                {
                    await store.StartPhaseAsync(phase.Name, Now, cancellationToken).ConfigureAwait(false);
                }

                var lastKey = checkpoint?.LastKey;
                var finished = false;
                while (!finished)
                {
                    await WaitForRoomAsync(cancellationToken).ConfigureAwait(false);
                    (finished, lastKey) = await ChunkAsync(phase, lastKey, cancellationToken).ConfigureAwait(false);
                    Report(phase);
                }
            }

            await store.CompleteRunAsync(Now, cancellationToken).ConfigureAwait(false);
            var elapsed = clock.GetElapsedTime(started);
            Log.BackfillCompleted(logger, options.Name, usersEnqueued, membershipsEnqueued, HumanDuration.Format(elapsed));
            Log.BackfillChunksCompleted(logger, options.Name, chunks, rereads, sizer.Current);
            return new ThrivestackBackfillResult
            {
                UsersEnqueued = usersEnqueued,
                MembershipsEnqueued = membershipsEnqueued,
                Completed = true,
                ResumedFromCheckpoint = resumed,
                Elapsed = elapsed,
            };
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Log.BackfillCanceled(logger, options.Name, usersEnqueued, membershipsEnqueued);
            throw;
        }
        catch (DbException exception) when (MissingTable(exception) is { } missing)
        {
            Log.BackfillFailed(logger, missing, options.Name, usersEnqueued, membershipsEnqueued);
            throw missing;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            Log.BackfillFailed(logger, exception, options.Name, usersEnqueued, membershipsEnqueued);
            throw;
        }
        finally
        {
            context.ChangeTracker.Clear();
            try
            {
                await store.ReleaseAsync(Now).ConfigureAwait(false);
            }
            catch (DbException)
            {
                // The lock expires by itself; the original failure matters more than this one.
            }

            await context.Database.CloseConnectionAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The outbox or the checkpoint table was never created: say which, and how to create it.</summary>
    private InvalidOperationException? MissingTable(DbException exception) =>
        MissingOutboxTable.Explain(context.Model, exception, $"The backfill named '{options.Name}' cannot run until it exists.");

    /// <summary>
    /// Waits while the outbox holds more pending events than the limit, keeping the lock alive meanwhile. The count
    /// is skipped while the backfill's own rows since the last count cannot have crossed the limit. Waiting, it checks
    /// again after a few milliseconds and doubles the wait up to <see cref="ThrivestackBackfillOptions.PollInterval"/>:
    /// the dispatcher drains a full backlog in well under a second, so a whole interval would leave it idle. The run's
    /// lock is renewed every quarter of its duration. A wait that lasts says so every few seconds (<see cref="BackfillWaitLog"/>):
    /// with no dispatcher draining the outbox it would last for ever.
    /// </summary>
    private async Task WaitForRoomAsync(CancellationToken cancellationToken)
    {
        if (pendingAtLastCount + enqueuedSinceCount <= options.MaxPendingEvents)
        {
            return;
        }

        var pending = context.Set<OutboxMessage>().Where(m => m.State == OutboxRowState.Pending);
        var pendingRows = pending.OrderBy(m => m.Id);
        BackfillWaitLog? waiting = null;
        var longest = options.PollInterval < RenewInterval ? options.PollInterval : RenewInterval;
        var wait = FirstRoomWait < longest ? FirstRoomWait : longest;
        var renewed = clock.GetTimestamp();
        while (true)
        {
            pendingAtLastCount = await pendingRows.Take(options.MaxPendingEvents == int.MaxValue ? int.MaxValue : options.MaxPendingEvents + 1).CountAsync(cancellationToken).ConfigureAwait(false);
            enqueuedSinceCount = 0;
            if (pendingAtLastCount <= options.MaxPendingEvents)
            {
                return;
            }

            waiting ??= BackfillWaitLog.Begin(logger, clock, options.Name, context.GetType().Name, options.MaxPendingEvents);
            if (waiting.Due)
            {
                waiting.Still(await pending.LongCountAsync(cancellationToken).ConfigureAwait(false));
            }

            if (clock.GetElapsedTime(renewed) >= RenewInterval)
            {
                var now = Now;
                await store.RenewAsync(now, now + LockDuration, cancellationToken).ConfigureAwait(false);
                renewed = clock.GetTimestamp();
            }

            await Task.Delay(wait, clock, cancellationToken).ConfigureAwait(false);
            wait = wait * 2 < longest ? wait * 2 : longest;
        }
    }

    /// <summary>
    /// One chunk in one transaction. On SQLite the chunk's first statement in the transaction takes the database's
    /// single write lock, and the users are read before it: the read stands only if no transaction inserted an
    /// outbox row between the read and the lock (the outbox's AUTOINCREMENT sequence is where it was before the
    /// read), else the chunk reads again under the lock. Either way no application save that wrote an event commits
    /// between the values read and the insert. On PostgreSQL the chunk locks the outbox against other writers
    /// before it reads: every transaction that already wrote an event has committed (its values are read), every
    /// later one writes its event after this chunk commits (a larger id, delivered after). The application's saves
    /// wait at most one chunk.
    /// </summary>
    private async Task<(bool Finished, string? LastKey)> ChunkAsync(BackfillPhase phase, string? lastKey, CancellationToken cancellationToken)
    {
        var deferWait = FirstRoomWait;
        while (true)
        {
            var chunkStarted = clock.GetTimestamp();
            var now = Now;
            var take = sizer.Current;
            try
            {
                if (yieldToSaves is { } saves)
                {
                    // One writer at a time (SQLite): the app's saves in progress go first, for a bounded wait of real time
                    // (an app's fake clock must not hold it), before the early read, so that their events do not force
                    // the chunk to read again under the lock.
                    await saves.AppSavesEndedAsync(TimeProvider.System, cancellationToken).ConfigureAwait(false);
                }

                BackfillChunk? early = null;
                long sequence = 0;
                if (readBeforeLock)
                {
                    sequence = await OutboxSequenceAsync(cancellationToken).ConfigureAwait(false);
                    early = await ReadChunkAsync(phase, lastKey, take, now, cancellationToken).ConfigureAwait(false);
                }

                await using var transaction = await (dialect.BackfillIsolation is { } isolation
                    ? context.Database.BeginTransactionAsync(isolation, cancellationToken)
                    : context.Database.BeginTransactionAsync(cancellationToken)).ConfigureAwait(false);
                var locked = clock.GetTimestamp();
                await store.RenewAsync(now, now + LockDuration, cancellationToken).ConfigureAwait(false);
                if (lockOutbox is not null)
                {
                    // Not through EF: a lock that times out is expected here, not a failed command to log as an error.
                    await using (var command = context.Database.GetDbConnection().CreateCommand())
                    {
                        command.Transaction = transaction.GetDbTransaction();
                        command.CommandText = lockOutbox;
                        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    locked = clock.GetTimestamp();
                }

                if (early is not null && await OutboxSequenceAsync(cancellationToken).ConfigureAwait(false) != sequence)
                {
                    // An event was written since the read: its user may be in the chunk with older values. Read again.
                    context.ChangeTracker.Clear();
                    early = null;
                    rereads++;
                }

                var chunk = early ?? await ReadChunkAsync(phase, lastKey, take, now, cancellationToken).ConfigureAwait(false);
                if (chunk.Messages.Count > 0)
                {
                    await OutboxRowWriter.InsertAsync(context, outbox, transaction.GetDbTransaction(), chunk.Messages, cancellationToken).ConfigureAwait(false);
                }

                var finished = chunk.Read < take;
                await store.AdvanceAsync(phase.Name, chunk.LastKey ?? lastKey, chunk.Read, chunk.Messages.Count, finished ? now : null, now, cancellationToken).ConfigureAwait(false);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                var held = clock.GetElapsedTime(locked);

                if (chunk.Messages.Count > 0)
                {
                    CommitNudge.Now(context);
                }

                chunks++;
                Count(phase, chunk.Read, chunk.Messages.Count);
                metrics.Chunk(clock.GetElapsedTime(chunkStarted));
                sizer.Record(chunk.Read, held);
                if (!finished)
                {
                    // As long again without the lock: saves that queued behind this chunk go first.
                    await Task.Delay(held, clock, cancellationToken).ConfigureAwait(false);
                }

                return (finished, chunk.LastKey ?? lastKey);
            }
            catch (DbException exception) when (dialect.IsLockTimeout(exception))
            {
                Log.BackfillChunkDeferred(logger, options.Name);
            }
            finally
            {
                context.ChangeTracker.Clear();
            }

            await Task.Delay(deferWait, clock, cancellationToken).ConfigureAwait(false);
            deferWait = deferWait * 2 < options.PollInterval ? deferWait * 2 : options.PollInterval;
        }
    }

    /// <summary>Reads up to <paramref name="take"/> rows after <paramref name="lastKey"/> and builds their events.</summary>
    private async Task<BackfillChunk> ReadChunkAsync(BackfillPhase phase, string? lastKey, int take, DateTime now, CancellationToken cancellationToken)
    {
        var entities = await phase.ReadAsync(context, lastKey, take, cancellationToken).ConfigureAwait(false);
        var messages = new List<OutboxMessage>(entities.Count);
        foreach (var entity in entities)
        {
            if (phase.ToMessage(context.Entry(entity), now) is { } message)
            {
                messages.Add(message);
            }
        }

        return new BackfillChunk(entities.Count, entities.Count == 0 ? null : phase.KeyOf(context.Entry(entities[^1])), messages);
    }

    /// <summary>The highest outbox id ever handed out (<see cref="OutboxDialect.OutboxSequenceSql"/>).</summary>
    private async Task<long> OutboxSequenceAsync(CancellationToken cancellationToken)
    {
        await using var command = context.Database.GetDbConnection().CreateCommand();
        command.Transaction = context.Database.CurrentTransaction?.GetDbTransaction();
        command.CommandText = dialect.OutboxSequenceSql(outbox);
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is null or DBNull ? 0 : Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }

    private void Count(BackfillPhase phase, int read, int enqueued)
    {
        processedThisRun += read;
        enqueuedSinceCount += enqueued;
        if (phase.IsUser)
        {
            processedUsers += read;
            usersEnqueued += enqueued;
        }
        else
        {
            processedMemberships += read;
            membershipsEnqueued += enqueued;
        }

        metrics.Enqueued(enqueued, options.Name, phase.IsUser);
    }

    private void Report(BackfillPhase phase)
    {
        var elapsed = clock.GetElapsedTime(started);
        var rate = elapsed > TimeSpan.Zero ? processedThisRun / elapsed.TotalSeconds : 0;

        // Users saved during the run can take the processed count past the estimate made at its start.
        var estimate = Math.Max(total, processedUsers + processedMemberships);
        var left = estimate - processedUsers - processedMemberships;
        TimeSpan? remaining = rate > 0 ? TimeSpan.FromSeconds(Math.Min(left / rate, TimeSpan.MaxValue.TotalSeconds / 2)) : null;
        progress?.Report(new ThrivestackBackfillProgress
        {
            EntityType = phase.EntityType.DisplayName(),
            ProcessedUsers = processedUsers,
            ProcessedMemberships = processedMemberships,
            EstimatedTotal = estimate,
            RowsPerSecond = rate,
            EstimatedRemaining = remaining,
            Elapsed = elapsed,
        });

        var now = Now;
        if (now - lastLog >= LogInterval)
        {
            lastLog = now;
            Log.BackfillProgressed(logger, options.Name, processedUsers + processedMemberships, estimate, phase.EntityType.DisplayName(), rate, remaining is { } timeLeft ? HumanDuration.Format(timeLeft) : "an unknown time");
        }
    }
}
