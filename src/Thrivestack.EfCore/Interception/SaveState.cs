using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// What one context's save in progress needs between the interceptor's callbacks: a scoped service of EF's internal
/// services (registered by the options extension), so each context instance has its own, pooled contexts keep theirs
/// across leases and reset it through <see cref="IResettableService"/>, and the shared interceptor holds no state.
/// </summary>
internal sealed class SaveState(ICurrentDbContext current) : IResettableService, IDisposable
{
    /// <summary>The context's save state; null for a context whose options do not have the interceptor.</summary>
    public static SaveState? Of(DbContext context) => context.GetInfrastructure().GetService<SaveState>();

    public bool InProgress { get; set; }

    /// <summary>Where this save is counted as in progress (see <see cref="Dispatch.OutboxSignal.SaveStarted"/>) until it ends.</summary>
    private Dispatch.OutboxSignal? countedIn;

    /// <summary>This save wrote or tracks outbox rows (else it only keeps change detection off).</summary>
    public bool HasRows { get; set; }

    /// <summary>The interceptor left <c>AutoDetectChangesEnabled</c> off for the rest of the save: turn it back on at its end.</summary>
    public bool RestoreDetectChanges { get; set; }

    /// <summary>Other save interceptors follow this library's: capture at EF's own DetectChanges, after all of them.</summary>
    public bool CaptureAtDetectChanges { get; set; }

    /// <summary>EF's DetectChanges ran during this save and the capture with it.</summary>
    public bool CapturedAtDetectChanges { get; set; }

    /// <summary>
    /// Outbox entities saved by EF's own batch (explicit enqueues outside a transaction, and rows where no transaction
    /// follows EF's commands); detached once the save succeeded.
    /// </summary>
    public List<EntityEntry> Tracked { get; } = [];

    /// <summary>What the interceptor needs from the context's options; found on the context's first save.</summary>
    public OptionsFacts? Facts { get; set; }

    /// <summary>The context's transaction manager (a service of its scope, fixed for its lifetime).</summary>
    public IDbContextTransactionManager? Transactions { get; set; }

    /// <summary>This save's rows of client-generated keys, built at capture and written untracked (see <see cref="Mode"/>).</summary>
    public List<OutboxMessage>? Rows { get; set; }

    /// <summary>The rows went into EF's transaction (at its last commit, when an execution strategy retried).</summary>
    public bool Written { get; set; }

    /// <summary>Events whose ids are store-generated: written once the database has assigned the keys.</summary>
    public List<Capture>? Deferred { get; set; }

    public DeferredWrite Mode { get; set; }

    /// <summary>
    /// With <see cref="DeferredWrite.AtCommit"/>: EF was left to run a one-command save without a transaction, and the rows
    /// are appended to that command (<see cref="OutboxDialect.AppendsToSaveCommand"/>); a save of several commands still
    /// gets EF's transaction and the rows at its commit.
    /// </summary>
    public bool AppendToSaveCommand { get; set; }

    public DateTime Timestamp { get; set; }

    public AutoTransactionBehavior? PreviousBehavior { get; set; }

    /// <summary>The statement that gives back the outbox's writer lock this save's session holds (<see cref="BatchWriterLock"/>).</summary>
    public string? SessionUnlock { get; set; }

    /// <summary><see cref="BatchWriterLock"/> opened the connection: it closes it when the save ends.</summary>
    public bool ClosesConnection { get; set; }

    /// <summary>Rows went into a transaction that is still open: nudge the dispatcher when it commits.</summary>
    public bool NudgeOnCommit { get; set; }

    /// <summary>
    /// A pooled context goes back to the pool: nothing of its last save may reach the next lease, least of all a writer
    /// lock its session still holds (a save that failed where EF reports no failure).
    /// </summary>
    public void ResetState()
    {
        if (SessionUnlock is not null || ClosesConnection)
        {
            BatchWriterLock.Release(current.Context, this);
        }

        Reset();
        NudgeLeftOver();
    }

    /// <summary>The context is disposed (its scope of EF's internal services ends).</summary>
    public void Dispose()
    {
        EndCountedSave();
        NudgeLeftOver();
    }

    /// <summary>
    /// Counts the save that begins as in progress until <see cref="Reset"/>: its end, a pooled context's return, the next
    /// save's start (a save EF never reported the end of, such as one another interceptor refused in <c>SavingChanges</c>),
    /// or the context's end. Until then a backfill's chunks on SQLite wait for it, each for at most
    /// <see cref="Dispatch.OutboxSignal.SaveYield"/>.
    /// </summary>
    public void CountSave(Dispatch.OutboxSignal? signal)
    {
        // Exchanges, not plain writes: a context disposed while a save of it runs on another thread (or saved twice at
        // once by mistake) must neither end a count twice nor lose one.
        if (signal is not null)
        {
            signal.SaveStarted();
        }

        Interlocked.Exchange(ref countedIn, signal)?.SaveEnded();
    }

    /// <summary>Ends the count of the save in progress, if it was counted (see <see cref="CountSave"/>).</summary>
    public void EndCountedSave() => Interlocked.Exchange(ref countedIn, null)?.SaveEnded();

    /// <summary>
    /// Rows went into a transaction whose end EF never saw: a <c>DbTransaction</c> given with <c>UseTransaction</c> and then
    /// committed (or rolled back) on itself, not through <c>context.Database</c>. The dispatcher is woken once the context
    /// is disposed or returned to its pool, instead of at its next poll: in the usual order (commit, then the context's end)
    /// the rows are committed by then; a context that ends before its transaction commits wakes it too early, and the rows
    /// wait for the poll, as before; after a rollback the wake-up finds nothing, which costs one claim. <see cref="Facts"/>
    /// is known whenever rows were written (the save or the enqueue read them), so nothing is resolved during a dispose.
    /// </summary>
    private void NudgeLeftOver()
    {
        if (NudgeOnCommit)
        {
            NudgeOnCommit = false;
            Facts?.Signal?.Notify();
        }
    }

    public Task ResetStateAsync(CancellationToken cancellationToken = default)
    {
        ResetState();
        return Task.CompletedTask;
    }

    public void Reset()
    {
        EndCountedSave();
        InProgress = false;
        HasRows = false;
        RestoreDetectChanges = false;
        CaptureAtDetectChanges = false;
        CapturedAtDetectChanges = false;
        Tracked.Clear();
        Deferred = null;
        Rows = null;
        Written = false;
        Mode = DeferredWrite.None;
        AppendToSaveCommand = false;
        SessionUnlock = null;
        ClosesConnection = false;
        PreviousBehavior = null;
    }
}
