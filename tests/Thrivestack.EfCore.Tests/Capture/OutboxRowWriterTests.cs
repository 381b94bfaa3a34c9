using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>The multi-row INSERT of the outbox rows against a connection that takes only a few parameters per statement.</summary>
public sealed class OutboxRowWriterTests : IAsyncLifetime
{
    private static readonly DateTime First = new(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc);

    private readonly SqliteTestDatabase database = new();

    public async Task InitializeAsync() => await database.CreateSchemaAsync();

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task Insert_MoreParametersThanTheConnectionTakes_SplitsIntoStatementsThatFit()
    {
        const int Limit = 10;
        var rows = Enumerable.Range(0, 40).Select(i => Row(i)).ToList();
        await using (var connection = new SqliteConnection(database.ConnectionString))
        {
            await connection.OpenAsync();
            // The connection itself refuses a statement of more variables, as SQLite (32,766) and PostgreSQL (65,535) do at their limits.
            SQLitePCL.raw.sqlite3_limit(connection.Handle, SQLitePCL.raw.SQLITE_LIMIT_VARIABLE_NUMBER, Limit);
            await using var context = new TestDbContext(new DbContextOptionsBuilder<TestDbContext>().UseSqlite(connection).Options);
            await using var transaction = await context.Database.BeginTransactionAsync();
            OutboxRowWriter.Insert(context, ModelMap.For(context.Model).RequireOutbox(), transaction.GetDbTransaction(), rows, Limit);
            await transaction.CommitAsync();
        }

        var written = await OutboxReader.RowsAsync(database);
        Assert.Equal(rows.Select(r => (r.UserId, r.GroupId, r.Kind, r.Payload, r.PayloadBytes, r.CreatedAt, r.NextAttemptAt)),
            written.Select(r => (r.UserId, r.GroupId, r.Kind, r.Payload, r.PayloadBytes, r.CreatedAt, r.NextAttemptAt)));
        Assert.All(written, r => Assert.Equal((OutboxRowState.Pending, 0), (r.State, r.Attempts)));
    }

    [Fact]
    public void MaxParameters_KnownProviders_AreTheirDocumentedLimits()
    {
        Assert.Equal(32_766, OutboxDialect.For("Microsoft.EntityFrameworkCore.Sqlite").MaxParameters);
        Assert.Equal(65_535, OutboxDialect.For("Npgsql.EntityFrameworkCore.PostgreSQL").MaxParameters);
        Assert.True(OutboxDialect.For("Microsoft.EntityFrameworkCore.SqlServer").MaxParameters < 2_100);
    }

    /// <summary>Every third row has a group id (one more parameter); the timestamp changes every seventh row.</summary>
    private static OutboxMessage Row(int i)
    {
        var at = First.AddSeconds(i / 7);
        var userId = $"user-{i}";
        var writer = IdentifyEventWriter.Start(userId, at);
        writer.Trait("email", $"u{i}@example.com");
        return writer.Finish(userId, i % 3 == 0 ? $"group-{i}" : null, at, i % 3 == 0 ? OutboxEventKind.Membership : OutboxEventKind.UserTraits);
    }
}
