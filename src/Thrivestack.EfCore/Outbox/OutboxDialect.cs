using System.Data;
using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// What differs between database providers: the SQL text and the decisions that depend on the provider (how the
/// dispatcher claims, how a connection is set up, how a table is probed, how many rows one INSERT carries, how the
/// backfill keeps its chunks consistent). Chosen once per model from the provider's name; no other type compares
/// provider names. The defaults are the portable forms every relational provider runs.
/// </summary>
internal abstract class OutboxDialect
{
    /// <summary>The dialect of the context's provider, cached on its model (a model belongs to one provider).</summary>
    public static OutboxDialect For(DbContext context) => context.Model.GetOrAddRuntimeAnnotationValue(
        ThrivestackAnnotationNames.Dialect,
        static c => For(c!.Database.ProviderName),
        context);

    public static OutboxDialect For(string? provider) => provider switch
    {
        SqliteDialect.ProviderName => SqliteDialect.Instance,
        NpgsqlDialect.ProviderName => NpgsqlDialect.Instance,
        _ => PortableDialect.Instance,
    };

    /// <summary>
    /// Refreshes the planner's statistics for the outbox, or null where the provider has none to refresh. Run by the
    /// dispatcher when a claim shows them stale (<see cref="OutboxStore.PlannerRowEstimate"/>).
    /// </summary>
    public virtual string? AnalyzeSql(OutboxTable table, ISqlGenerationHelper sql) => null;

    /// <summary>The most bound parameters one command takes.</summary>
    public abstract int MaxParameters { get; }

    /// <summary>The most rows one multi-row INSERT carries. SQL Server refuses more row value expressions; larger statements bring nothing here.</summary>
    public virtual int MaxRowsPerInsert => 1000;

    /// <summary>Whether a COMMIT can end the last INSERT's command, skipped by the server when the INSERT fails.</summary>
    public virtual bool CommitsInBatch => false;

    /// <summary>
    /// Whether the server runs a command's statements in one implicit transaction, so that outbox INSERTs appended to
    /// EF's command of a save without a transaction commit or fail with the change.
    /// </summary>
    public virtual bool AppendsToSaveCommand => false;

    /// <summary>
    /// Whether the provider's asynchronous calls run synchronously and block the calling thread; the dispatcher then runs
    /// its claims and acknowledgements on threads of its own (see <c>DatabaseThread</c>), not on the thread pool.
    /// </summary>
    public virtual bool BlocksOnAsync => false;

    /// <summary>A statement the dispatcher runs on its connection before a cycle (the connection then stays open); null for none.</summary>
    public virtual string? ConnectionSetUp => null;

    /// <summary>The claim statement (parameters as <see cref="OutboxClaimSql"/> describes); null: the portable LINQ claim.</summary>
    public virtual string? ClaimSql(OutboxTable table, ISqlGenerationHelper sql) => null;

    /// <summary>The pending count and the oldest pending row's creation time (no parameters); null: the portable LINQ queries.</summary>
    public virtual string? StatisticsSql(OutboxTable table, ISqlGenerationHelper sql) => null;

    /// <summary>The outbox-wide lease under which the dispatcher claims by reading; null where it claims by writing a lease into each row.</summary>
    public virtual DispatcherLeaseSql? OutboxLease(OutboxTable table, IEntityType? coordination, ISqlGenerationHelper sql) => null;

    /// <summary>
    /// Writes into <paramref name="command"/> the cheapest query that tells whether the table exists. True when the query
    /// only probes: it fails exactly when the table is missing, and its answer says nothing.
    /// </summary>
    public virtual bool PrepareTableProbe(DbCommand command, ISqlGenerationHelper sql, string table, string? schema)
    {
        command.CommandText = $"SELECT 1 FROM {sql.DelimitIdentifier(table, schema)} WHERE 1 = 0";
        return true;
    }

    /// <summary>The isolation level of a backfill chunk's transaction; null: the provider's default.</summary>
    public virtual IsolationLevel? BackfillIsolation => null;

    /// <summary>
    /// The statement that starts a backfill chunk's transaction: locks the outbox against concurrent writers (and sets
    /// what the chunk's read needs for the rest of the transaction); null where the transaction itself locks.
    /// </summary>
    public virtual string? LockOutboxSql(OutboxTable table, TimeSpan timeout, ISqlGenerationHelper sql) => null;

    /// <summary>
    /// The statement (ending in a separator) that every transaction writing outbox rows runs first, taking the outbox's
    /// writer lock shared until it ends; a backfill chunk (<see cref="LockOutboxSql"/>) takes it exclusively. Null where
    /// the chunk's lock needs no help from the writers.
    /// </summary>
    public virtual string? WriterLockSql(OutboxTable table, ISqlGenerationHelper sql) => null;

    /// <summary>
    /// <see cref="WriterLockSql"/> held by the session instead of a transaction (taken before EF's commands of a save that
    /// has no transaction yet, released after its commit), as a lock and an unlock statement.
    /// </summary>
    public virtual (string Lock, string Unlock)? SessionWriterLockSql(OutboxTable table, ISqlGenerationHelper sql) => null;

    /// <summary>Whether the failure is <see cref="LockOutboxSql"/>'s lock timing out: the chunk is deferred, not failed.</summary>
    public virtual bool IsLockTimeout(DbException exception) => false;

    /// <summary>
    /// Whether the backfill may read a chunk before it takes the write lock, because a sequence (<see cref="OutboxSequenceSql"/>)
    /// tells that no event was written in between.
    /// </summary>
    public virtual Task<bool> CanReadBeforeLockAsync(DbContext context, OutboxTable table, CancellationToken cancellationToken) => Task.FromResult(false);

    /// <summary>The highest outbox id ever handed out, where <see cref="CanReadBeforeLockAsync"/> is true.</summary>
    public virtual string OutboxSequenceSql(OutboxTable table) =>
        throw new NotSupportedException("This provider has no outbox sequence to read.");

    protected static void AddParameter(DbCommand command, string name, string value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    protected static string CountPendingSql(OutboxTable table, ISqlGenerationHelper sql) =>
        $"SELECT COUNT(*), MIN(\"created_at\") FROM {sql.DelimitIdentifier(table.TableName, table.Schema)} WHERE \"state\" = 0";
}
