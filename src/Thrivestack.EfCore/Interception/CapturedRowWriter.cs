using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Writes a save's captured rows so that they share the change's transaction. They are never tracked: one multi-row
/// INSERT (or a few) in EF's own transaction just before it commits, or in the application's transaction right after
/// the save. Rows of store-generated keys are built only then, once the database has assigned the keys.
/// </summary>
internal static class CapturedRowWriter
{
    /// <summary>
    /// Decides where this save's rows are written (<see cref="SaveState.Mode"/>). Only where no transaction can hold them
    /// after EF's commands (<c>AutoTransactionBehavior.Never</c>, an ambient <c>TransactionScope</c>) do rows of
    /// client-generated keys ride in EF's own batch, as the application chose. <paramref name="onlyInserts"/>: the scan
    /// found a save of new rows only, which it looks for only where the provider can carry them in EF's command
    /// (<see cref="ChangeScanner.OnlyInserts"/>).
    /// </summary>
    public static void Choose(DbContext context, SaveState state, bool onlyInserts)
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
            // No transaction of EF's follows its commands to read the users' rows back in: the context's traits are sent.
            BuildReadBacksFromContext(state);
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

        state.Mode = DeferredWrite.AtCommit;
        if (state.Deferred is null && onlyInserts)
        {
            // PostgreSQL: a one-command save of new rows keeps EF's single round trip, with the rows appended to its
            // command. Not when it updates or deletes: EF finds a concurrency conflict only after the server committed.
            state.AppendToSaveCommand = true;
            return;
        }

        // A single-command save runs without a transaction and so without TransactionCommitting: ask EF for one.
        state.PreviousBehavior = database.AutoTransactionBehavior;
        database.AutoTransactionBehavior = AutoTransactionBehavior.Always;
    }

    /// <summary>
    /// EF runs the save's command without a transaction (<see cref="SaveState.AppendToSaveCommand"/>): the rows go into it.
    /// Every attempt of a retrying execution strategy runs the command again, and writes the rows with it.
    /// </summary>
    public static void IntoSaveCommand(DbContext context, DbCommand command, SaveState state)
    {
        // Only saves that insert new rows take this path: no user of theirs is read back (nothing is deferred).
        OutboxRowWriter.AppendTo(context, OutboxOf(context), command, RowsToWrite(state, saved: null));
        state.Written = true;
    }

    /// <summary>
    /// EF commits its own transaction of the save (<see cref="DeferredWrite.AtCommit"/>): the rows go in first. With
    /// <paramref name="commit"/>, the last INSERT also commits where the provider can do both in one round trip; true
    /// when it did, and EF's own COMMIT must then be suppressed.
    /// </summary>
    public static bool AtCommit(DbContext context, DbTransaction transaction, SaveState state, bool commit)
    {
        // Every attempt of a retrying execution strategy commits its own transaction: each one writes the rows.
        var rows = RowsToWrite(state, ReadBack(context, transaction, state));
        var committed = commit
            ? OutboxRowWriter.InsertAndCommit(context, OutboxOf(context), transaction, rows)
            : Insert(context, OutboxOf(context), transaction, rows);
        state.Written = true;
        return committed;
    }

    public static async Task<bool> AtCommitAsync(DbContext context, DbTransaction transaction, SaveState state, bool commit, CancellationToken cancellationToken)
    {
        var committed = false;
        var rows = RowsToWrite(state, await ReadBackAsync(context, transaction, state, cancellationToken).ConfigureAwait(false));
        if (commit)
        {
            committed = await OutboxRowWriter.InsertAndCommitAsync(context, OutboxOf(context), transaction, rows, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await OutboxRowWriter.InsertAsync(context, OutboxOf(context), transaction, rows, cancellationToken).ConfigureAwait(false);
        }

        state.Written = true;
        return committed;
    }

    /// <summary>The save went through: rows for the application's open transaction, or those no commit of EF's took.</summary>
    public static void AfterSave(DbContext context, SaveState state)
    {
        if (state.Mode == DeferredWrite.AfterSave)
        {
            var transaction = context.Database.CurrentTransaction!.GetDbTransaction();
            OutboxRowWriter.Insert(context, OutboxOf(context), transaction, RowsToWrite(state, ReadBack(context, transaction, state)));
        }
        else if (state.Mode == DeferredWrite.AtCommit && !state.Written)
        {
            WriteAlone(context, state);
        }
    }

    public static async Task AfterSaveAsync(DbContext context, SaveState state, CancellationToken cancellationToken)
    {
        if (state.Mode == DeferredWrite.AfterSave)
        {
            var transaction = context.Database.CurrentTransaction!.GetDbTransaction();
            var saved = await ReadBackAsync(context, transaction, state, cancellationToken).ConfigureAwait(false);
            await OutboxRowWriter.InsertAsync(context, OutboxOf(context), transaction, RowsToWrite(state, saved), cancellationToken).ConfigureAwait(false);
        }
        else if (state.Mode == DeferredWrite.AtCommit && !state.Written)
        {
            await WriteAloneAsync(context, state, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Forgets this save's rows and where they were going, and gives the application back its transaction behaviour.</summary>
    public static void Forget(DbContext context, SaveState state)
    {
        state.Deferred = null;
        state.Rows = null;
        state.Mode = DeferredWrite.None;
        state.AppendToSaveCommand = false;
        if (state.PreviousBehavior is { } previous)
        {
            context.Database.AutoTransactionBehavior = previous;
            state.PreviousBehavior = null;
        }
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

    private static bool Insert(DbContext context, OutboxTable table, DbTransaction transaction, List<OutboxMessage> rows)
    {
        OutboxRowWriter.Insert(context, table, transaction, rows);
        return false;
    }

    private static OutboxTable OutboxOf(DbContext context) => ModelMap.For(context.Model).RequireOutbox();

    /// <summary>The traits of the save's users read back from their rows (<see cref="TraitReadBack"/>); null when none is to be read.</summary>
    private static Dictionary<EntityEntry, object?[]>? ReadBack(DbContext context, DbTransaction transaction, SaveState state) =>
        state.Deferred?.Exists(c => c.ReadBack) == true ? TraitReadBack.Read(context, transaction, state.Deferred) : null;

    private static async Task<Dictionary<EntityEntry, object?[]>?> ReadBackAsync(DbContext context, DbTransaction transaction, SaveState state, CancellationToken cancellationToken) =>
        state.Deferred?.Exists(c => c.ReadBack) == true
            ? await TraitReadBack.ReadAsync(context, transaction, state.Deferred, cancellationToken).ConfigureAwait(false)
            : null;

    /// <summary>
    /// Where no transaction follows EF's commands (rows in EF's own batch), users to read back get their events from the
    /// context's values, built now like those of new users.
    /// </summary>
    private static void BuildReadBacksFromContext(SaveState state)
    {
        if (state.Deferred is null)
        {
            return;
        }

        foreach (var capture in state.Deferred.Where(c => c.ReadBack && !c.HasTemporaryId).ToList())
        {
            state.Deferred.Remove(capture);
            if (capture.ToMessage(state.Timestamp) is { } message)
            {
                (state.Rows ??= []).Add(message);
            }
        }

        if (state.Deferred.Count == 0)
        {
            state.Deferred = null;
        }
    }

    /// <summary>
    /// The save's rows: those built at capture, then the deferred ones: those whose keys the database just assigned and
    /// those whose traits were read back (<paramref name="saved"/>).
    /// </summary>
    private static List<OutboxMessage> RowsToWrite(SaveState state, Dictionary<EntityEntry, object?[]>? saved)
    {
        if (state.Deferred is null)
        {
            return state.Rows ?? [];
        }

        var rows = new List<OutboxMessage>((state.Rows?.Count ?? 0) + state.Deferred.Count);
        rows.AddRange(state.Rows ?? []);

        // Events read back now are stamped now: a save that waited for another's lock on the row commits after it, and its
        // event, which carries the row as both left it, must not carry the older time.
        var readAt = saved is not null && state.Facts?.Clock is { } clock ? clock.GetUtcNow().UtcDateTime : state.Timestamp;
        foreach (var capture in state.Deferred)
        {
            if (capture.HasTemporaryId)
            {
                throw new InvalidOperationException(
                    $"The key of '{(capture.User ?? capture.Membership)!.Metadata.DisplayName()}' was still temporary when its identify event was written. Please report this with the model that produced it.");
            }

            var traits = capture.ReadBack && saved is not null && saved.TryGetValue(capture.User!, out var read) ? read : null;
            if (capture.ToMessage(traits is null ? state.Timestamp : readAt, traits) is { } message)
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
        var dbTransaction = transaction.GetDbTransaction();
        OutboxRowWriter.Insert(context, OutboxOf(context), dbTransaction, RowsToWrite(state, ReadBack(context, dbTransaction, state)));
        transaction.Commit();
    }

    private static async Task WriteAloneAsync(DbContext context, SaveState state, CancellationToken cancellationToken)
    {
        state.Mode = DeferredWrite.None;
        var transaction = await context.Database.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            var dbTransaction = transaction.GetDbTransaction();
            var saved = await ReadBackAsync(context, dbTransaction, state, cancellationToken).ConfigureAwait(false);
            await OutboxRowWriter.InsertAsync(context, OutboxOf(context), dbTransaction, RowsToWrite(state, saved), cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
