using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>A SQLite temp file in WAL mode, and the two ways of opening contexts on it.</summary>
internal sealed class BenchDatabase : IDisposable
{
    private readonly string path = Path.Combine(Directory, $"thrivestack-bench-{Guid.NewGuid():N}.db");
    private readonly DbContextOptions<BenchDbContext> plain;
    private readonly DbContextOptions<BenchDbContext> intercepted;

    public BenchDatabase()
    {
        if (PostgresServer is { } server)
        {
            // A database of its own on the throwaway server (fsync off there: the CPU cost is what is measured).
            var database = new Npgsql.NpgsqlConnectionStringBuilder(server) { Database = $"thrivestack_bench_{Guid.NewGuid():N}" }.ConnectionString;
            plain = new DbContextOptionsBuilder<BenchDbContext>().UseNpgsql(database).Options;
            intercepted = new DbContextOptionsBuilder<BenchDbContext>().UseNpgsql(database).AddThrivestackIdentifyInterceptor().Options;
            Console.WriteLine("// PostgreSQL database of its own");
        }
        else
        {
            // WAL with synchronous=NORMAL, as production SQLite apps run it: a commit does not wait for an fsync
            // (milliseconds on this kind of disk), which would hide the CPU cost being measured.
            var connection = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
            plain = new DbContextOptionsBuilder<BenchDbContext>().UseSqlite(connection).AddInterceptors(SynchronousNormal.Instance).Options;
            var builder = new DbContextOptionsBuilder<BenchDbContext>().UseSqlite(connection).AddInterceptors(SynchronousNormal.Instance);
            builder.AddThrivestackIdentifyInterceptor();
            intercepted = builder.Options;
            Console.WriteLine($"// database file: {path} (WAL, synchronous=NORMAL)");
        }

        using var context = Create(interceptor: false);
        context.Database.EnsureDeleted();
        context.Database.EnsureCreated();
    }

    /// <summary>The admin connection string of a PostgreSQL server to measure on instead of SQLite (paired runner, <c>pg</c>).</summary>
    public static string? PostgresServer { get; set; }

    /// <summary>
    /// Where the database file lives: THRIVESTACK_BENCH_DB_DIR, else the RAM-backed /dev/shm where there is one,
    /// else the temp folder. A flush to a virtual disk takes milliseconds and varies a lot; it would drown the CPU
    /// cost of capture (the quantity measured) in noise and make the ratio look better than it is.
    /// </summary>
    public static string Directory { get; } =
        Environment.GetEnvironmentVariable("THRIVESTACK_BENCH_DB_DIR") is { Length: > 0 } configured ? configured
        : System.IO.Directory.Exists("/dev/shm") ? "/dev/shm"
        : Path.GetTempPath();

    public BenchDbContext Create(bool interceptor) => new(interceptor ? intercepted : plain);

    public void Dispose()
    {
        if (PostgresServer is not null)
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            using var context = Create(interceptor: false);
            context.Database.EnsureDeleted();
            return;
        }

        SqliteConnection.ClearAllPools();
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            File.Delete(file);
        }
    }
}
