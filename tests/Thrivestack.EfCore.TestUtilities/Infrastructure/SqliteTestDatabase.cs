using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>A SQLite database in a temporary file (several connections, like a real app), deleted afterwards.</summary>
public sealed class SqliteTestDatabase : TestDatabase
{
    private readonly string path = Path.Combine(Path.GetTempPath(), $"thrivestack-test-{Guid.NewGuid():N}.db");

    public SqliteTestDatabase()
    {
        ConnectionString = new SqliteConnectionStringBuilder { DataSource = path, DefaultTimeout = 30, Pooling = false }.ToString();
    }

    public string ConnectionString { get; }

    public override DbConnection CreateConnection() => new SqliteConnection(ConnectionString);

    protected override void ConfigureProvider(DbContextOptionsBuilder builder) => builder.UseSqlite(ConnectionString);

    /// <summary>Creates the schema in WAL mode, the journal mode the README recommends (it stays with the file).</summary>
    public override async Task CreateSchemaAsync()
    {
        await base.CreateSchemaAsync();
        await using var context = CreateContext();
        await context.Database.ExecuteSqlRawAsync("PRAGMA journal_mode = WAL;");
    }

    public override ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
            }
        }

        return ValueTask.CompletedTask;
    }
}
