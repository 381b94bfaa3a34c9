using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Backfill;

/// <summary>
/// The checkpoint rows of one backfill name. The run row's lock (owner + expiry) lets one run at a time work
/// on a name; every chunk renews it in its own transaction, and a run that finds it taken over stops.
/// </summary>
internal sealed class BackfillCheckpointStore(DbContext context, string name, string owner)
{
    private DbSet<BackfillCheckpoint> Rows => context.Set<BackfillCheckpoint>();

    private IQueryable<BackfillCheckpoint> Run => Rows.Where(c => c.Name == name && c.Entity == BackfillCheckpoint.RunEntity);

    public static IEntityType RequireModel(DbContext context) =>
        context.Model.FindEntityType(typeof(BackfillCheckpoint))
        ?? throw new InvalidOperationException(
            "The model has no backfill checkpoint table. Call modelBuilder.AddThrivestackOutbox() in OnModelCreating and add a migration (it creates thrivestack_backfill).");

    /// <summary>Takes the name's lock, or throws when another run holds it.</summary>
    public async Task AcquireAsync(DateTime now, DateTime until, CancellationToken cancellationToken)
    {
        if (!await Run.AnyAsync(cancellationToken).ConfigureAwait(false))
        {
            await TryInsertAsync(BackfillCheckpoint.RunEntity, now, cancellationToken).ConfigureAwait(false);
        }

        var taken = await Run.Where(c => c.LockOwner == null || c.LockExpiresAt <= now).ExecuteUpdateAsync(
            s => s.SetProperty(c => c.LockOwner, owner).SetProperty(c => c.LockExpiresAt, until).SetProperty(c => c.UpdatedAt, now),
            cancellationToken).ConfigureAwait(false);
        if (taken == 0)
        {
            var holder = await Run.AsNoTracking().FirstAsync(cancellationToken).ConfigureAwait(false);
            throw new InvalidOperationException(
                $"A backfill named '{name}' is already running (owner {holder.LockOwner ?? "unknown"}, lock held until {holder.LockExpiresAt:O} UTC). "
                + "Wait for it to finish; if its process was killed, run again after that time and it continues from its checkpoint.");
        }
    }

    /// <summary>Renews the lock; throws when it was lost (this run was paused past the expiry and another took over).</summary>
    public async Task RenewAsync(DateTime now, DateTime until, CancellationToken cancellationToken)
    {
        var renewed = await Run.Where(c => c.LockOwner == owner).ExecuteUpdateAsync(
            s => s.SetProperty(c => c.LockExpiresAt, until).SetProperty(c => c.UpdatedAt, now),
            cancellationToken).ConfigureAwait(false);
        if (renewed == 0)
        {
            throw new InvalidOperationException(
                $"The backfill named '{name}' lost its lock to another run (this run was stopped longer than the lock lasts). This run stops; the other one continues from the checkpoint.");
        }
    }

    public Task<int> ReleaseAsync(DateTime now) =>
        Run.Where(c => c.LockOwner == owner).ExecuteUpdateAsync(
            s => s.SetProperty(c => c.LockOwner, (string?)null).SetProperty(c => c.LockExpiresAt, (DateTime?)null).SetProperty(c => c.UpdatedAt, now),
            CancellationToken.None);

    public Task<List<BackfillCheckpoint>> ReadAsync(CancellationToken cancellationToken) =>
        Rows.AsNoTracking().Where(c => c.Name == name).ToListAsync(cancellationToken);

    /// <summary>Forgets every entity position of the name (Restart), and starts the run's times again.</summary>
    public async Task ResetAsync(DateTime now, CancellationToken cancellationToken)
    {
        await Rows.Where(c => c.Name == name && c.Entity != BackfillCheckpoint.RunEntity).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        await Run.ExecuteUpdateAsync(
            s => s.SetProperty(c => c.StartedAt, now).SetProperty(c => c.CompletedAt, (DateTime?)null).SetProperty(c => c.UpdatedAt, now),
            cancellationToken).ConfigureAwait(false);
    }

    public Task StartPhaseAsync(string entity, DateTime now, CancellationToken cancellationToken) =>
        TryInsertAsync(entity, now, cancellationToken);

    /// <summary>Moves an entity's position; called inside the chunk's transaction, so it commits with the chunk's rows.</summary>
    public Task<int> AdvanceAsync(string entity, string? lastKey, long processed, long enqueued, DateTime? completedAt, DateTime now, CancellationToken cancellationToken) =>
        Rows.Where(c => c.Name == name && c.Entity == entity).ExecuteUpdateAsync(
            s => s.SetProperty(c => c.LastKey, lastKey)
                .SetProperty(c => c.Processed, c => c.Processed + processed)
                .SetProperty(c => c.Enqueued, c => c.Enqueued + enqueued)
                .SetProperty(c => c.CompletedAt, completedAt)
                .SetProperty(c => c.UpdatedAt, now),
            cancellationToken);

    public Task<int> CompleteRunAsync(DateTime now, CancellationToken cancellationToken) =>
        Run.ExecuteUpdateAsync(s => s.SetProperty(c => c.CompletedAt, now).SetProperty(c => c.UpdatedAt, now), cancellationToken);

    // A plain INSERT (not SaveChanges: the application's own save hooks have no business with these rows).
    // Two runs may race to create the same row; the loser's insert fails on the key and the row exists either way.
    private async Task TryInsertAsync(string entity, DateTime now, CancellationToken cancellationToken)
    {
        var entityType = RequireModel(context);
        var store = StoreObjectIdentifier.Table(entityType.GetTableName()!, entityType.GetSchema());
        var sql = context.GetService<ISqlGenerationHelper>();
        string Column(string property) => sql.DelimitIdentifier(entityType.FindProperty(property)!.GetColumnName(store)!);
        var text = $"INSERT INTO {sql.DelimitIdentifier(store.Name, store.Schema)} "
            + $"({Column(nameof(BackfillCheckpoint.Name))}, {Column(nameof(BackfillCheckpoint.Entity))}, {Column(nameof(BackfillCheckpoint.Processed))}, "
            + $"{Column(nameof(BackfillCheckpoint.Enqueued))}, {Column(nameof(BackfillCheckpoint.StartedAt))}, {Column(nameof(BackfillCheckpoint.UpdatedAt))}) "
            + "VALUES ({0}, {1}, 0, 0, {2}, {2})";
        try
        {
            await context.Database.ExecuteSqlRawAsync(text, [name, entity, now], cancellationToken).ConfigureAwait(false);
        }
        catch (DbException)
        {
            if (!await Rows.AnyAsync(c => c.Name == name && c.Entity == entity, cancellationToken).ConfigureAwait(false))
            {
                throw;
            }
        }
    }
}
