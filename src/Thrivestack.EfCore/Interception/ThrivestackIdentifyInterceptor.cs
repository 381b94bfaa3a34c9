using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Writes identify events into the outbox inside the transaction of the change that caused them. Only routes EF's
/// callbacks: <see cref="ChangeDetectionPolicy"/> starts the capture (<see cref="EventCapture"/>),
/// <see cref="CapturedRowWriter"/> writes the rows, <see cref="CommitNudge"/> wakes the dispatcher and
/// <see cref="SaveLifecycle"/> ends the save. Shared by every context of a service provider (pooling included);
/// per-save state lives in each context's <see cref="SaveState"/>.
/// </summary>
internal sealed class ThrivestackIdentifyInterceptor : ISaveChangesInterceptor, IDbTransactionInterceptor
{
    private readonly ChangeDetectionPolicy detection;

    /// <summary>Whether EF's internal services hold another interceptor that acts before commits: -1 not known yet, 0 no, 1 yes.</summary>
    private int injectedTransactionOthers = -1;

    public ThrivestackIdentifyInterceptor()
    {
        detection = new ChangeDetectionPolicy(this);
    }

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        if (eventData.Context is { } context && !result.HasResult)
        {
            if (detection.Capture(context) is { Tracked.Count: > 0 } state)
            {
                // EF raises SavingChanges outside its own error handling: a failure here must end the save itself.
                try
                {
                    BatchWriterLock.Take(context, state);
                }
                catch
                {
                    SaveLifecycle.Abandon(context);
                    throw;
                }
            }
        }

        return result;
    }

    public async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && !result.HasResult)
        {
            if (detection.Capture(context) is { Tracked.Count: > 0 } state)
            {
                try
                {
                    await BatchWriterLock.TakeAsync(context, state, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    SaveLifecycle.Abandon(context);
                    throw;
                }
            }
        }

        return result;
    }

    public int SavedChanges(SaveChangesCompletedEventData eventData, int result)
    {
        if (eventData.Context is { } context && SaveLifecycle.Active(context) is { } state)
        {
            try
            {
                ChangeDetectionPolicy.Saved(context, state);
                CapturedRowWriter.AfterSave(context, state);
                SaveLifecycle.Complete(context, state);
            }
            finally
            {
                SaveLifecycle.End(context, state);
            }
        }

        return result;
    }

    public async ValueTask<int> SavedChangesAsync(SaveChangesCompletedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && SaveLifecycle.Active(context) is { } state)
        {
            try
            {
                ChangeDetectionPolicy.Saved(context, state);
                await CapturedRowWriter.AfterSaveAsync(context, state, cancellationToken).ConfigureAwait(false);
                SaveLifecycle.Complete(context, state);
            }
            finally
            {
                try
                {
                    await BatchWriterLock.ReleaseAsync(context, state).ConfigureAwait(false);
                }
                finally
                {
                    SaveLifecycle.End(context, state);
                }
            }
        }

        return result;
    }

    public void SaveChangesFailed(DbContextErrorEventData eventData) => SaveLifecycle.Abandon(eventData.Context);

    public Task SaveChangesFailedAsync(DbContextErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        SaveLifecycle.Abandon(eventData.Context);
        return Task.CompletedTask;
    }

    public void SaveChangesCanceled(DbContextEventData eventData) => SaveLifecycle.Abandon(eventData.Context);

    public Task SaveChangesCanceledAsync(DbContextEventData eventData, CancellationToken cancellationToken = default)
    {
        SaveLifecycle.Abandon(eventData.Context);
        return Task.CompletedTask;
    }

    public InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        // The rows go into EF's transaction whatever an earlier interceptor decided about the commit (one that suppressed it
        // commits or rolls back later itself, and the rows with it); only then may they not carry the COMMIT.
        if (eventData.Context is { } context && SaveLifecycle.Active(context) is { Mode: DeferredWrite.AtCommit } state
            && CapturedRowWriter.AtCommit(context, transaction, state, !result.IsSuppressed && CommitsWithRows(context, state)))
        {
            return InterceptionResult.Suppress();
        }

        return result;
    }

    public async ValueTask<InterceptionResult> TransactionCommittingAsync(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context && SaveLifecycle.Active(context) is { Mode: DeferredWrite.AtCommit } state
            && await CapturedRowWriter.AtCommitAsync(context, transaction, state, !result.IsSuppressed && CommitsWithRows(context, state), cancellationToken).ConfigureAwait(false))
        {
            return InterceptionResult.Suppress();
        }

        return result;
    }

    /// <summary>
    /// Whether the rows' last INSERT may commit EF's transaction itself (one round trip instead of two, PostgreSQL): only
    /// when no other interceptor acts before commits (<see cref="CommitInterception"/>), as it expects the transaction open.
    /// </summary>
    private bool CommitsWithRows(DbContext context, SaveState state)
    {
        if (OptionsFacts.Of(context, state).ConfiguresTransactionInterceptor)
        {
            return false;
        }

        if (injectedTransactionOthers < 0)
        {
            var others = false;
            foreach (var interceptor in context.GetService<IEnumerable<IInterceptor>>())
            {
                others |= !ReferenceEquals(interceptor, this) && CommitInterception.InterceptsCommitting(interceptor);
            }

            injectedTransactionOthers = others ? 1 : 0;
        }

        return injectedTransactionOthers == 0;
    }

    public void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData) => CommitNudge.Committed(eventData.Context);

    public Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        CommitNudge.Committed(eventData.Context);
        return Task.CompletedTask;
    }

    public void TransactionRolledBack(DbTransaction transaction, TransactionEndEventData eventData) => CommitNudge.RolledBack(eventData.Context);

    public Task TransactionRolledBackAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        CommitNudge.RolledBack(eventData.Context);
        return Task.CompletedTask;
    }
}
