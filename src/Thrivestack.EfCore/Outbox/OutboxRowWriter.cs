using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// Inserts new pending outbox rows with multi-row INSERTs on a given transaction, without EF tracking them: the
/// interceptor's rows, explicit enqueues inside a transaction, the backfill. Only the columns a new row needs are
/// written; the others are NULL. Strings are parameters; numbers and the state are literals, and rows of one
/// timestamp share one parameter for <c>created_at</c> and <c>next_attempt_at</c>.
/// </summary>
internal static class OutboxRowWriter
{
    private static readonly ConditionalWeakTable<OutboxTable, InsertShape> Shapes = [];

    public static void Insert(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows) =>
        Insert(context, table, transaction, rows, maxParameters: null);

    /// <summary>Inserts with a bound on parameters per command below the provider's (tests of the chunking).</summary>
    internal static void Insert(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows, int? maxParameters)
    {
        var shape = ShapeOf(context, table);
        var limit = maxParameters ?? shape.MaxParameters;
        for (var start = 0; start < rows.Count;)
        {
            using var command = Build(shape, limit, transaction, rows, ref start);
            Execute(command, table);
        }
    }

    public static async Task InsertAsync(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows, CancellationToken cancellationToken) =>
        await InsertAsync(context, table, transaction, rows, commit: false, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Inserts the rows and, where the provider runs a multi-statement command as one round trip whose later statements
    /// are skipped once one fails (PostgreSQL), commits the transaction in the last command: the rows and the COMMIT
    /// travel together instead of costing a round trip each. True when it committed; false when the commit is left to
    /// the caller (other providers, or no rows).
    /// </summary>
    public static bool InsertAndCommit(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows)
    {
        var shape = ShapeOf(context, table);
        var commit = shape.CommitInBatch && rows.Count > 0;
        for (var start = 0; start < rows.Count;)
        {
            using var command = Build(shape, shape.MaxParameters, transaction, rows, ref start);
            if (commit && start == rows.Count)
            {
                command.CommandText += shape.CommitStatement;
            }

            Execute(command, table);
        }

        return commit;
    }

    /// <inheritdoc cref="InsertAndCommit"/>
    public static async Task<bool> InsertAndCommitAsync(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows, CancellationToken cancellationToken)
    {
        var commit = ShapeOf(context, table).CommitInBatch && rows.Count > 0;
        await InsertAsync(context, table, transaction, rows, commit, cancellationToken).ConfigureAwait(false);
        return commit;
    }

    private static async Task InsertAsync(DbContext context, OutboxTable table, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows, bool commit, CancellationToken cancellationToken)
    {
        var shape = ShapeOf(context, table);
        for (var start = 0; start < rows.Count;)
        {
            var command = Build(shape, shape.MaxParameters, transaction, rows, ref start);
            await using (command.ConfigureAwait(false))
            {
                if (commit && start == rows.Count)
                {
                    command.CommandText += shape.CommitStatement;
                }

                try
                {
                    await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (DbException exception) when (MissingOutboxTable.Is(table, exception))
                {
                    throw MissingOutboxTable.Exception(table, exception);
                }
            }
        }
    }

    private static void Execute(DbCommand command, OutboxTable table)
    {
        try
        {
            command.ExecuteNonQuery();
        }
        catch (DbException exception) when (MissingOutboxTable.Is(table, exception))
        {
            throw MissingOutboxTable.Exception(table, exception);
        }
    }

    private static InsertShape ShapeOf(DbContext context, OutboxTable table) =>
        Shapes.TryGetValue(table, out var shape) ? shape : Shapes.GetValue(table, t => new InsertShape(context, t));

    /// <summary>One INSERT of the rows from <paramref name="start"/> that fit the provider's limits; moves <paramref name="start"/> past them.</summary>
    private static DbCommand Build(InsertShape shape, int maxParameters, DbTransaction transaction, IReadOnlyList<OutboxMessage> rows, ref int start)
    {
        var command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        var text = new StringBuilder(shape.Prefix.Length + (Math.Min(rows.Count - start, shape.MaxRows) * 48));
        var parameters = 0;
        AppendInsert(shape, command, text, shape.Names, writerLock: true, maxParameters, rows, ref start, ref parameters);
        command.CommandText = text.ToString();
        return command;
    }

    /// <summary>
    /// Appends the rows' INSERTs to <paramref name="command"/>, EF's command of a save that it runs without a transaction,
    /// where the provider runs a command's statements in one implicit transaction (<see cref="OutboxDialect.AppendsToSaveCommand"/>):
    /// the change and its events then commit or fail together, in the save's one round trip. The parameters are named
    /// apart from EF's. Without the writer lock: such a save only inserts rows, and a backfill chunk can read no older
    /// values of a new row (it sees the row committed, or not at all and the event stands for it).
    /// </summary>
    public static void AppendTo(DbContext context, OutboxTable table, DbCommand command, IReadOnlyList<OutboxMessage> rows)
    {
        var shape = ShapeOf(context, table);
        var efText = command.CommandText;
        var text = new StringBuilder(rows.Count * 64 + 128);
        if (!efText.AsSpan().TrimEnd().EndsWith(";", StringComparison.Ordinal))
        {
            text.Append(';');
        }

        var parameters = 0;
        var maxParameters = shape.MaxParameters - command.Parameters.Count;
        for (var start = 0; start < rows.Count;)
        {
            text.Append(Environment.NewLine);
            AppendInsert(shape, command, text, shape.AppendedNames, writerLock: false, maxParameters - parameters, rows, ref start, ref parameters);
            text.Append(';');
        }

        command.CommandText = string.Concat(efText, text.ToString());
    }

    /// <summary>The writer lock (when asked) and one INSERT of the rows from <paramref name="start"/> that fit the provider's limits; moves <paramref name="start"/> past them.</summary>
    private static void AppendInsert(
        InsertShape shape,
        DbCommand command,
        StringBuilder text,
        Func<int, (string Name, string Placeholder)> names,
        bool writerLock,
        int maxParameters,
        IReadOnlyList<OutboxMessage> rows,
        ref int start,
        ref int parameters)
    {
        if (writerLock)
        {
            text.Append(shape.WriterLock);
        }

        text.Append(shape.Prefix);
        var used = 0;
        var r = start;
        DateTime? lastTime = null;
        string? timePlaceholder = null;
        for (; r < rows.Count && r - start < shape.MaxRows; r++)
        {
            var row = rows[r];
            Debug.Assert(row is { State: OutboxRowState.Pending, Attempts: 0, LeaseId: null } && row.NextAttemptAt == row.CreatedAt, "Only new pending rows are written here.");
            var needed = (row.GroupId is null ? 2 : 3) + (row.CreatedAt == lastTime ? 0 : 1);
            if (used + needed > maxParameters && r > start)
            {
                break;
            }

            if (r > start)
            {
                text.Append(", ");
            }

            text.Append('(').Append(Parameter(names, command, shape.UserId, row.UserId, ref parameters, ref used)).Append(", ");
            text.Append(row.GroupId is null ? "NULL" : Parameter(names, command, shape.GroupId, row.GroupId, ref parameters, ref used)).Append(", ");
            text.Append(shape.KindLiteral(row.Kind)).Append(", ");
            text.Append(Parameter(names, command, shape.Payload, row.Payload, ref parameters, ref used)).Append(", ");
            text.Append(CultureInfo.InvariantCulture, $"{row.PayloadBytes}, ");
            if (row.CreatedAt != lastTime)
            {
                lastTime = row.CreatedAt;
                timePlaceholder = Parameter(names, command, shape.CreatedAt, row.CreatedAt, ref parameters, ref used);
            }

            text.Append(timePlaceholder).Append(", ").Append(timePlaceholder).Append(shape.PendingTail);
        }

        start = r;
    }

    private static string Parameter(Func<int, (string Name, string Placeholder)> names, DbCommand command, OutboxColumn column, object value, ref int count, ref int used)
    {
        var (name, placeholder) = names(count++);
        used++;
        command.Parameters.Add(column.CreateParameter(command, name, value));
        return placeholder;
    }

    /// <summary>What every INSERT into one outbox table shares: its column list, literals and the provider's limits (<see cref="OutboxDialect"/>).</summary>
    private sealed class InsertShape
    {
        private readonly string[] kindLiterals;

        /// <summary>The names of parameters p0, p1, ... as bound and as written in the text; grown on demand, shared by every command.</summary>
        private (string Name, string Placeholder)[] parameterNames = [];

        /// <summary>The same for INSERTs appended to EF's commands, whose own parameters are p0, p1, ...</summary>
        private (string Name, string Placeholder)[] appendedNames = [];

        public InsertShape(DbContext context, OutboxTable table)
        {
            Sql = context.GetService<ISqlGenerationHelper>();
            var dialect = OutboxDialect.For(context);
            MaxParameters = dialect.MaxParameters;
            MaxRows = dialect.MaxRowsPerInsert;
            CommitInBatch = dialect.CommitsInBatch;
            CommitStatement = ";" + Environment.NewLine + "COMMIT";
            WriterLock = dialect.WriterLockSql(table, Sql);
            Names = ParameterName;
            AppendedNames = AppendedParameterName;
            UserId = Column(table, nameof(OutboxMessage.UserId));
            GroupId = Column(table, nameof(OutboxMessage.GroupId));
            Payload = Column(table, nameof(OutboxMessage.Payload));
            CreatedAt = Column(table, nameof(OutboxMessage.CreatedAt));
            var kind = Column(table, nameof(OutboxMessage.Kind));
            var state = Column(table, nameof(OutboxMessage.State));
            var attempts = Column(table, nameof(OutboxMessage.Attempts));
            OutboxColumn[] columns =
            [
                UserId, GroupId, kind, Payload, Column(table, nameof(OutboxMessage.PayloadBytes)), CreatedAt,
                Column(table, nameof(OutboxMessage.NextAttemptAt)), state, attempts,
            ];
            Prefix = $"INSERT INTO {Sql.DelimitIdentifier(table.TableName, table.Schema)} ({string.Join(", ", columns.Select(c => Sql.DelimitIdentifier(c.Name)))}) VALUES ";
            PendingTail = $", {state.TypeMapping.GenerateSqlLiteral(OutboxRowState.Pending)}, {attempts.TypeMapping.GenerateSqlLiteral(0)})";
            kindLiterals = Enum.GetValues<OutboxEventKind>().Select(k => kind.TypeMapping.GenerateSqlLiteral(k)).ToArray();
        }

        public ISqlGenerationHelper Sql { get; }

        public int MaxParameters { get; }

        public int MaxRows { get; }

        /// <summary>A COMMIT can end the last INSERT's command (<see cref="InsertAndCommit"/>).</summary>
        public bool CommitInBatch { get; }

        public string CommitStatement { get; }

        public string? WriterLock { get; }

        /// <summary><see cref="ParameterName"/> as a delegate made once.</summary>
        public Func<int, (string Name, string Placeholder)> Names { get; }

        /// <summary><see cref="AppendedParameterName"/> as a delegate made once.</summary>
        public Func<int, (string Name, string Placeholder)> AppendedNames { get; }

        public string Prefix { get; }

        /// <summary>The state and attempts of a new row, and the closing parenthesis.</summary>
        public string PendingTail { get; }

        public OutboxColumn UserId { get; }

        public OutboxColumn GroupId { get; }

        public OutboxColumn Payload { get; }

        public OutboxColumn CreatedAt { get; }

        public string KindLiteral(OutboxEventKind kind) => kindLiterals[(int)kind];

        public (string Name, string Placeholder) ParameterName(int index)
        {
            var known = parameterNames;
            return index < known.Length ? known[index] : Grow(ref parameterNames, "p", index);
        }

        public (string Name, string Placeholder) AppendedParameterName(int index)
        {
            var known = appendedNames;
            return index < known.Length ? known[index] : Grow(ref appendedNames, "thrivestack_p", index);
        }

        private (string Name, string Placeholder) Grow(ref (string Name, string Placeholder)[] names, string prefix, int index)
        {
            // Concurrent growers build equal arrays; whichever is kept serves everyone.
            var known = names;
            var grown = new (string, string)[Math.Max(index + 1, Math.Max(16, known.Length * 2))];
            known.CopyTo(grown, 0);
            for (var i = known.Length; i < grown.Length; i++)
            {
                var name = prefix + i.ToString(CultureInfo.InvariantCulture);
                grown[i] = (Sql.GenerateParameterName(name), Sql.GenerateParameterNamePlaceholder(name));
            }

            names = grown;
            return grown[index];
        }

        private static OutboxColumn Column(OutboxTable table, string property) =>
            table.InsertColumns.Single(c => c.Property.Name == property);
    }
}
