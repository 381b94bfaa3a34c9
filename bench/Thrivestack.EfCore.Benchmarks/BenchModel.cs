using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Benchmarks;

/// <summary>A user's address, an owned type (OwnsOne) whose city is a trait.</summary>
public sealed class BenchAddress
{
    public string? City { get; set; }

    public string? Street { get; set; }
}

/// <summary>A typical SaaS user: seven mapped traits (one an array, one in an owned type) and a few columns that are not traits.</summary>
public sealed class BenchUser
{
    public Guid Id { get; set; }

    public string Email { get; set; } = "";

    public string? FirstName { get; set; }

    public string? LastName { get; set; }

    public List<string> Phones { get; set; } = [];

    public int Age { get; set; }

    public DateTime? ActiveAt { get; set; }

    // Not traits: an update that only touches these must not produce an event.
    public int LoginCount { get; set; }

    public DateTime? LastSeenAt { get; set; }

    public string? Notes { get; set; }

    public BenchAddress Address { get; set; } = new();
}

/// <summary>The same model with and without the interceptor: the outbox table is part of the model in both cases.</summary>
public sealed class BenchContext(DbContextOptions<BenchContext> options) : DbContext(options)
{
    public DbSet<BenchUser> Users => Set<BenchUser>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.AddThrivestackOutbox();
        modelBuilder.Entity<BenchUser>(user =>
        {
            user.HasIndex(u => u.Email).IsUnique();
            user.OwnsOne(u => u.Address);
            user.ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.LastName, ThrivestackTraits.LastName)
                .HasTrait(u => u.Phones, ThrivestackTraits.Phone)
                .HasTrait(u => u.Age, "age")
                .HasTrait(u => u.ActiveAt, ThrivestackTraits.ActiveAt)
                .HasTrait(u => u.Address.City, ThrivestackTraits.City);
        });
    }
}

/// <summary>A SQLite temp file in WAL mode, and the two ways of opening contexts on it.</summary>
internal sealed class BenchDatabase : IDisposable
{
    private readonly string path = Path.Combine(Directory, $"thrivestack-bench-{Guid.NewGuid():N}.db");
    private readonly DbContextOptions<BenchContext> plain;
    private readonly DbContextOptions<BenchContext> intercepted;

    public BenchDatabase()
    {
        if (PostgresServer is { } server)
        {
            // A database of its own on the throwaway server (fsync off there: the CPU cost is what is measured).
            var database = new Npgsql.NpgsqlConnectionStringBuilder(server) { Database = $"thrivestack_bench_{Guid.NewGuid():N}" }.ConnectionString;
            plain = new DbContextOptionsBuilder<BenchContext>().UseNpgsql(database).Options;
            intercepted = new DbContextOptionsBuilder<BenchContext>().UseNpgsql(database).AddThrivestackIdentifyInterceptor().Options;
            Console.WriteLine("// PostgreSQL database of its own");
        }
        else
        {
            // WAL with synchronous=NORMAL, as production SQLite apps run it: a commit does not wait for an fsync
            // (milliseconds on this kind of disk), which would hide the CPU cost being measured.
            var connection = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
            plain = new DbContextOptionsBuilder<BenchContext>().UseSqlite(connection).AddInterceptors(SynchronousNormal.Instance).Options;
            var builder = new DbContextOptionsBuilder<BenchContext>().UseSqlite(connection).AddInterceptors(SynchronousNormal.Instance);
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

    public BenchContext Create(bool interceptor) => new(interceptor ? intercepted : plain);

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

/// <summary>What an application writes by hand when it adds the outbox row itself: the same JSON, the same columns.</summary>
internal static class HandWrittenOutbox
{
    public static OutboxMessage For(BenchUser user, DateTime nowUtc)
    {
        var id = user.Id.ToString();
        var writer = IdentifyEventWriter.Start(id, nowUtc);
        writer.Trait("email", TraitValueKind.String, user.Email);
        writer.Trait(ThrivestackTraits.FirstName, TraitValueKind.String, user.FirstName);
        writer.Trait(ThrivestackTraits.LastName, TraitValueKind.String, user.LastName);
        writer.Trait(ThrivestackTraits.Phone, TraitValueKind.StringArray, user.Phones);
        writer.Trait("age", TraitValueKind.Number, user.Age);
        writer.Trait(ThrivestackTraits.ActiveAt, TraitValueKind.DateTime, user.ActiveAt);
        writer.Trait(ThrivestackTraits.City, TraitValueKind.String, user.Address.City);
        return writer.Finish(id, null, nowUtc, OutboxEventKind.UserTraits);
    }
}

internal static class NewUsers
{
    public static List<BenchUser> New(int count, int seed)
    {
        var users = new List<BenchUser>(count);
        var now = DateTime.UtcNow;
        for (var i = 0; i < count; i++)
        {
            users.Add(new BenchUser
            {
                Id = Guid.NewGuid(),
                Email = $"user{seed}-{i}@example.com",
                FirstName = "Ada",
                LastName = "Lovelace",
                Phones = ["+44 20 7946 0000"],
                Age = 36,
                ActiveAt = now,
                Notes = "created by the benchmark",
                Address = new BenchAddress { City = "London", Street = "1 Analytical Way" },
            });
        }

        return users;
    }
}
