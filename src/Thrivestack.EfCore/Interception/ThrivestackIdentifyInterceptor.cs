using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Writes identify events into the outbox inside the transaction of the change that caused them.
/// Stateless and shared by every context of a service provider (pooling included); per-save state lives
/// beside each context.
/// </summary>
internal sealed class ThrivestackIdentifyInterceptor : ISaveChangesInterceptor, IDbTransactionInterceptor
{
    /// <summary>
    /// Whether EF's internal services hold another save interceptor: -1 not known yet, 0 no, 1 yes. A fact of the
    /// internal service provider this instance is a singleton of.
    /// </summary>
    private int injectedOthers = -1;

    /// <summary>
    /// Ends a save on the way EF reports every failure: its <c>SaveChangesFailed</c> event, raised also for a
    /// concurrency conflict, for which EF calls no interceptor (efcore#32750). Subscribed only during a save.
    /// </summary>
    private static readonly EventHandler<SaveChangesFailedEventArgs> OnSaveFailed = static (sender, _) => Abandon(sender as DbContext);

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        if (eventData.Context is { } context && !result.HasResult)
        {
            Capture(context);
        }

        return result;
    }

    public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && !result.HasResult)
        {
            Capture(context);
        }

        return ValueTask.FromResult(result);
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        if (eventData.Context is { } context && Active(context) is { } state)
        {
            try
            {
                RestoreDetectChanges(context, state);
                WarnIfNeverCaptured(context, state);
                if (state.Mode == DeferredWrite.AfterSave)
                {
                    OutboxRowWriter.Insert(context, OutboxOf(context), context.Database.CurrentTransaction!.GetDbTransaction(), RowsToWrite(state));
                }
                else if (state.Mode == DeferredWrite.AtCommit && !state.Written)
                {
                    WriteAlone(context, state);
                }

                Complete(context, state);
            }
            finally
            {
                End(context, state);
            }
        }

        return result;
    }

    public async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && Active(context) is { } state)
        {
            try
            {
                RestoreDetectChanges(context, state);
                WarnIfNeverCaptured(context, state);
                if (state.Mode == DeferredWrite.AfterSave)
                {
                    await OutboxRowWriter.InsertAsync(context, OutboxOf(context), context.Database.CurrentTransaction!.GetDbTransaction(), RowsToWrite(state), cancellationToken)
                        .ConfigureAwait(false);
                }
                else if (state.Mode == DeferredWrite.AtCommit && !state.Written)
                {
                    await WriteAloneAsync(context, state, cancellationToken).ConfigureAwait(false);
                }

                Complete(context, state);
            }
            finally
            {
                End(context, state);
            }
        }

        return result;
    }

    public void SaveChangesFailed(DbContextErrorEventData eventData) => Abandon(eventData.Context);

    public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Abandon(eventData.Context);
        return Task.CompletedTask;
    }

    public void SaveChangesCanceled(DbContextEventData eventData) => Abandon(eventData.Context);

    public Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        Abandon(eventData.Context);
        return Task.CompletedTask;
    }

    public InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        if (eventData.Context is { } context && Active(context) is { Mode: DeferredWrite.AtCommit } state)
        {
            // Every attempt of a retrying execution strategy commits its own transaction: each one writes the rows.
            OutboxRowWriter.Insert(context, OutboxOf(context), transaction, RowsToWrite(state));
            state.Written = true;
        }

        return result;
    }

    public async ValueTask<InterceptionResult> TransactionCommittingAsync(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && Active(context) is { Mode: DeferredWrite.AtCommit } state)
        {
            await OutboxRowWriter.InsertAsync(context, OutboxOf(context), transaction, RowsToWrite(state), cancellationToken).ConfigureAwait(false);
            state.Written = true;
        }

        return result;
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => NudgeIfCommitted(eventData.Context);

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        NudgeIfCommitted(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => ForgetNudge(eventData.Context);

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        ForgetNudge(eventData.Context);
        return Task.CompletedTask;
    }

    /// <summary>The context's save state; null for a context whose options do not have the interceptor.</summary>
    internal static SaveState? StateOf(DbContext context) => context.GetInfrastructure().GetService<SaveState>();

    internal static void Nudge(DbContext context) => FactsOf(context).Signal?.Notify();

    internal static TimeProvider Clock(DbContext context) => FactsOf(context).Clock;

    /// <summary>The facts of the context's options, read once per context (kept in its save state when it has one).</summary>
    internal static OptionsFacts FactsOf(DbContext context) =>
        StateOf(context) is { } state ? FactsOf(context, state) : OptionsFacts.For(context.GetService<IDbContextOptions>());

    /// <summary>
    /// The facts of the context's options, kept beside the context (its options never change) and beside the
    /// options instance, which contexts from a pool, a factory or <c>new</c> with shared options have in common.
    /// </summary>
    private static OptionsFacts FactsOf(DbContext context, SaveState state) =>
        state.Facts ??= OptionsFacts.For(context.GetService<IDbContextOptions>());

    private static SaveState? Active(DbContext context) => StateOf(context) is { InProgress: true } state ? state : null;

    private void Capture(DbContext context)
    {
        var map = ModelMap.For(context.Model);
        if (map.Outbox is null)
        {
            return;
        }

        var state = StateOf(context)!;
        if (state.InProgress)
        {
            // The previous save ended without any callback we could see; start clean.
            Abandon(context);
        }

        var tracker = context.ChangeTracker;
        var autoDetect = tracker.AutoDetectChangesEnabled;
        var facts = FactsOf(context, state);
        var othersFollow = facts.ConfiguresSaveInterceptor || !IsOnlyInjectedSaveInterceptor(context);
        if (autoDetect && othersFollow)
        {
            // EF runs this library's interceptor before every interceptor added with AddInterceptors, and those may
            // still change, insert or remove entities (auditing, domain events). Capture at EF's own DetectChanges,
            // which runs after all of them and right before the update pipeline reads the entries, so the events
            // carry what is written. An interceptor that enumerates Entries() triggers an earlier pass: each pass
            // captures afresh, the last one wins.
            Begin(context, state);
            state.CaptureAtDetectChanges = true;
            tracker.DetectedAllChanges += OnDetectedAllChanges;
            return;
        }

        var keepDetectionOff = false;
        try
        {
            // EF detects changes only after SaveChanges interceptors ran (efcore#35989): do it once here.
            if (autoDetect)
            {
                tracker.DetectChanges();
                tracker.AutoDetectChangesEnabled = false;
            }

            Record(context, state, map, facts);
            // EF's own pass would find nothing new: no other save interceptor follows (checked above), and this save's
            // rows are not tracked. Detection stays off until the save ends (SavedChanges, Failed, Canceled); not when
            // rows ride in EF's batch (AutoTransactionBehavior.Never, TransactionScope).
            keepDetectionOff = autoDetect && state.Mode != DeferredWrite.InSaveBatch;
            if (keepDetectionOff)
            {
                Begin(context, state);
                state.RestoreDetectChanges = true;
            }
        }
        catch
        {
            keepDetectionOff = false;
            Abandon(context);
            throw;
        }
        finally
        {
            if (!keepDetectionOff)
            {
                tracker.AutoDetectChangesEnabled = autoDetect;
            }
        }
    }

    private static void OnDetectedAllChanges(object? sender, DetectedChangesEventArgs args)
    {
        if (sender is not ChangeTracker tracker || Active(tracker.Context) is not { CaptureAtDetectChanges: true } state)
        {
            return;
        }

        // Entries() would detect changes again and raise this event inside itself.
        state.CapturedAtDetectChanges = true;
        tracker.AutoDetectChangesEnabled = false;
        try
        {
            Uncapture(tracker.Context, state);
            Record(tracker.Context, state, ModelMap.For(tracker.Context.Model), state.Facts!);
        }
        catch
        {
            Abandon(tracker.Context);
            throw;
        }
        finally
        {
            tracker.AutoDetectChangesEnabled = true;
        }
    }

    /// <summary>
    /// Scans the tracked entries (changes already detected), detaches rows a failed or earlier pass left behind, builds
    /// this save's outbox rows (or defers those whose ids the database has yet to assign) and chooses where they go.
    /// </summary>
    private static void Record(DbContext context, SaveState state, ModelMap map, OptionsFacts facts)
    {
        var scanner = new ChangeScanner(map);
        scanner.Scan(context.ChangeTracker);
        foreach (var leftover in scanner.Leftovers)
        {
            leftover.State = EntityState.Detached;
        }

        var captures = scanner.Captures();
        if (captures.Count == 0 && scanner.ManualRows.Count == 0)
        {
            return;
        }

        Begin(context, state);
        state.HasRows = true;
        facts.WarnIfUndispatched();
        state.Timestamp = facts.Clock.GetUtcNow().UtcDateTime;
        state.Tracked.AddRange(scanner.ManualRows);
        foreach (var capture in captures)
        {
            if (capture.HasTemporaryId)
            {
                (state.Deferred ??= []).Add(capture);
            }
            else if (capture.ToMessage(state.Timestamp) is { } message)
            {
                (state.Rows ??= new List<OutboxMessage>(captures.Count)).Add(message);
            }
        }

        if (state.Deferred is not null || state.Rows is not null)
        {
            ChooseWrite(context, state);
        }
    }

    /// <summary>Forgets what an earlier pass of this save captured; its rows are detached by the next scan.</summary>
    private static void Uncapture(DbContext context, SaveState state)
    {
        state.HasRows = false;
        state.Tracked.Clear();
        state.Deferred = null;
        state.Rows = null;
        state.Mode = DeferredWrite.None;
        if (state.PreviousBehavior is { } previous)
        {
            context.Database.AutoTransactionBehavior = previous;
            state.PreviousBehavior = null;
        }
    }

    /// <summary>
    /// True when no other save interceptor is in EF's internal services (those added with <c>AddInterceptors</c>
    /// are in <see cref="OptionsFacts.ConfiguresSaveInterceptor"/>).
    /// </summary>
    private bool IsOnlyInjectedSaveInterceptor(DbContext context)
    {
        if (injectedOthers < 0)
        {
            var seen = false;
            var others = false;
            foreach (var interceptor in context.GetService<IEnumerable<IInterceptor>>())
            {
                if (ReferenceEquals(interceptor, this))
                {
                    seen = true;
                }
                else if (interceptor is ISaveChangesInterceptor)
                {
                    others = true;
                }
            }

            // Not found in the list: an arrangement this code does not know; keep EF's own pass.
            injectedOthers = seen && !others ? 0 : 1;
        }

        return injectedOthers == 0;
    }

    /// <summary>
    /// A later interceptor turned automatic change detection off during the save, so EF's own pass, which this save's
    /// capture waited for, never ran: the save went through without events. Say so instead of staying silent.
    /// </summary>
    private static void WarnIfNeverCaptured(DbContext context, SaveState state)
    {
        if (state.CaptureAtDetectChanges && !state.CapturedAtDetectChanges)
        {
            Log.CaptureSkipped(context.GetService<ILoggerFactory>().CreateLogger<ThrivestackIdentifyInterceptor>(), context.GetType().Name);
        }
    }

    private static void Begin(DbContext context, SaveState state)
    {
        if (!state.InProgress)
        {
            state.InProgress = true;
            context.SaveChangesFailed += OnSaveFailed;
        }
    }

    private static void RestoreDetectChanges(DbContext context, SaveState state)
    {
        if (state.RestoreDetectChanges)
        {
            state.RestoreDetectChanges = false;
            context.ChangeTracker.AutoDetectChangesEnabled = true;
        }
    }

    /// <summary>
    /// Decides where this save's rows are written. They are never tracked: one multi-row INSERT (or a few) in EF's own
    /// transaction just before it commits, or in the application's transaction right after the save. Only where no
    /// transaction can hold them after EF's commands (<c>AutoTransactionBehavior.Never</c>, an ambient
    /// <c>TransactionScope</c>) do rows of client-generated keys ride in EF's own batch, as the application chose.
    /// </summary>
    private static void ChooseWrite(DbContext context, SaveState state)
    {
        if ((state.Transactions ??= context.GetService<IDbContextTransactionManager>()).CurrentTransaction is not null)
        {
            state.Mode = DeferredWrite.AfterSave;
            return;
        }

        var database = context.Database;
        var ambient = System.Transactions.Transaction.Current is not null;
        if (ambient || database.AutoTransactionBehavior == AutoTransactionBehavior.Never)
        {
            if (state.Deferred is null)
            {
                TrackInSaveBatch(context, state);
                return;
            }

            throw ambient
                ? new NotSupportedException(
                    "Thrivestack.EfCore cannot write identify events for store-generated user ids inside an ambient System.Transactions scope. "
                    + "Use context.Database.BeginTransaction() instead of TransactionScope, or give users client-generated keys (Guid).")
                : new InvalidOperationException(
                    "Thrivestack.EfCore cannot write identify events atomically for store-generated user ids when Database.AutoTransactionBehavior is Never: "
                    + "no transaction would hold the change and its event. Use AutoTransactionBehavior.WhenNeeded (the default) or Always, or open a transaction with context.Database.BeginTransaction().");
        }

        // A single-command save runs without a transaction and so without TransactionCommitting: ask EF for one.
        state.PreviousBehavior = database.AutoTransactionBehavior;
        database.AutoTransactionBehavior = AutoTransactionBehavior.Always;
        state.Mode = DeferredWrite.AtCommit;
    }

    private static void TrackInSaveBatch(DbContext context, SaveState state)
    {
        foreach (var message in state.Rows!)
        {
            message.Captured = true;
            state.Tracked.Add(context.Add(message));
        }

        state.Rows = null;
        state.Mode = DeferredWrite.InSaveBatch;
    }

    private static OutboxTable OutboxOf(DbContext context) => ModelMap.For(context.Model).RequireOutbox();

    /// <summary>The save's rows: those of client-generated keys, built at capture, then those whose keys the database just assigned.</summary>
    private static List<OutboxMessage> RowsToWrite(SaveState state)
    {
        if (state.Deferred is null)
        {
            return state.Rows ?? [];
        }

        var rows = new List<OutboxMessage>((state.Rows?.Count ?? 0) + state.Deferred.Count);
        rows.AddRange(state.Rows ?? []);
        foreach (var capture in state.Deferred)
        {
            if (capture.HasTemporaryId)
            {
                throw new InvalidOperationException(
                    $"The key of '{(capture.User ?? capture.Membership)!.Metadata.DisplayName()}' was still temporary when its identify event was written. Please report this with the model that produced it.");
            }

            if (capture.ToMessage(state.Timestamp) is { } message)
            {
                rows.Add(message);
            }
        }

        return rows;
    }

    /// <summary>
    /// EF committed no transaction of its own during the save (it ran no command for the captured changes): the rows
    /// describe changes already in the database, so they get a transaction of their own.
    /// </summary>
    private static void WriteAlone(DbContext context, SaveState state)
    {
        state.Mode = DeferredWrite.None;
        using var transaction = context.Database.BeginTransaction();
        OutboxRowWriter.Insert(context, OutboxOf(context), transaction.GetDbTransaction(), RowsToWrite(state));
        transaction.Commit();
    }

    private static async Task WriteAloneAsync(DbContext context, SaveState state, CancellationToken cancellationToken)
    {
        state.Mode = DeferredWrite.None;
        var transaction = await context.Database.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            await OutboxRowWriter.InsertAsync(context, OutboxOf(context), transaction.GetDbTransaction(), RowsToWrite(state), cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static void Complete(DbContext context, SaveState state)
    {
        if (!state.HasRows)
        {
            return;
        }

        foreach (var entry in state.Tracked)
        {
            entry.State = EntityState.Detached;
        }

        // The transaction manager, not context.Database: the facade's dependencies are built on first use,
        // which cost a save that never touched it more than the rest of this method.
        if ((state.Transactions ??= context.GetService<IDbContextTransactionManager>()).CurrentTransaction is null)
        {
            state.Facts?.Signal?.Notify();
        }
        else
        {
            state.NudgeOnCommit = true;
        }
    }

    private static void End(DbContext context, SaveState state)
    {
        context.SaveChangesFailed -= OnSaveFailed;
        if (state.CaptureAtDetectChanges)
        {
            context.ChangeTracker.DetectedAllChanges -= OnDetectedAllChanges;
        }

        RestoreDetectChanges(context, state);
        if (state.PreviousBehavior is { } previous)
        {
            context.Database.AutoTransactionBehavior = previous;
        }

        state.Reset();
    }

    private static void Abandon(DbContext? context)
    {
        if (context is null || Active(context) is not { } state)
        {
            return;
        }

        foreach (var entry in state.Tracked)
        {
            if (entry.Entity is OutboxMessage { Captured: true } && entry.State == EntityState.Added)
            {
                entry.State = EntityState.Detached;
            }
        }

        End(context, state);
    }

    private static void NudgeIfCommitted(DbContext? context)
    {
        if (context is not null && StateOf(context) is { NudgeOnCommit: true } state)
        {
            state.NudgeOnCommit = false;
            FactsOf(context, state).Signal?.Notify();
        }
    }

    private static void ForgetNudge(DbContext? context)
    {
        if (context is not null && StateOf(context) is { } state)
        {
            state.NudgeOnCommit = false;
        }
    }
}
