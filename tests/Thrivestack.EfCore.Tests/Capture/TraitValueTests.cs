using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// Every trait value kind the README lists, end to end: SaveChanges, then the outbox payload exactly as it will be
/// sent. Ids and traits stored through value converters; an outbox under another table name.
/// </summary>
public sealed class TraitValueTests : IAsyncLifetime
{
    private static readonly DateTime Seen = new(2026, 3, 4, 5, 6, 7, 890, DateTimeKind.Utc);

    private readonly SqliteTestDatabase database = new();
    private readonly FakeTimeProvider clock = new(new DateTimeOffset(2026, 11, 30, 9, 0, 0, TimeSpan.Zero));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChanges_EveryTraitKind_WritesItsJsonForm()
    {
        var traits = await SaveAndReadTraitsAsync(NewUser(), inCulture: null);

        Assert.Equal(JsonValueKind.Number, traits.GetProperty("balance").ValueKind);
        Assert.Equal("1234.5678", traits.GetProperty("balance").GetRawText());
        Assert.Equal("-0.25", traits.GetProperty("ratio").GetRawText());
        Assert.Equal("2026-03-04T05:06:07.8900000Z", traits.GetProperty("seen_utc").GetString());
        Assert.Equal("2026-03-04T05:06:07.8900000Z", traits.GetProperty("seen_unspecified").GetString());
        Assert.Equal(
            new DateTime(2026, 3, 4, 5, 6, 7, 890, DateTimeKind.Local).ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            traits.GetProperty("seen_local").GetString());
        Assert.EndsWith("Z", traits.GetProperty("seen_local").GetString());
        Assert.Equal("2026-03-04T03:06:07.8900000Z", traits.GetProperty("seen_offset").GetString());
        Assert.Equal("1990-07-15", traits.GetProperty("birthday").GetString());
        Assert.Equal("06:30:15.25", traits.GetProperty("wakes").GetString());
        Assert.Equal("https://example.com/a?b=c", traits.GetProperty("homepage").GetString());
        Assert.Equal("Gold", traits.GetProperty("tier").GetString());
        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e", traits.GetProperty("reference").GetString());
        Assert.Equal("1.02:03:04", traits.GetProperty("trial").GetString());
        Assert.Equal(JsonValueKind.True, traits.GetProperty("admin").ValueKind);
        Assert.Equal(JsonValueKind.False, traits.GetProperty("verified").ValueKind);
        Assert.Equal(["a", "b, c", "é"], traits.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(JsonValueKind.Array, traits.GetProperty("no_tags").ValueKind);
        Assert.Empty(traits.GetProperty("no_tags").EnumerateArray());
        Assert.Equal(42, traits.GetProperty("seats").GetInt32());
        Assert.Equal(9007199254740993L, traits.GetProperty("big").GetInt64());
    }

    [Fact]
    public async Task SaveChanges_NullTraits_AreLeftOut()
    {
        var user = NewUser();
        user.Nickname = null;
        user.Homepage = null;
        user.Birthday = null;
        user.Seats = null;

        var traits = await SaveAndReadTraitsAsync(user, inCulture: null);

        Assert.False(traits.TryGetProperty("nickname", out _));
        Assert.False(traits.TryGetProperty("homepage", out _));
        Assert.False(traits.TryGetProperty("birthday", out _));
        Assert.False(traits.TryGetProperty("seats", out _));
        Assert.DoesNotContain("null", traits.GetRawText());
    }

    [Fact]
    public async Task SaveChanges_UnderAnotherCulture_WritesTheSameInvariantJson()
    {
        var invariant = await SaveAndReadPayloadAsync(NewUser(), inCulture: null);
        var odd = (CultureInfo)CultureInfo.GetCultureInfo("de-DE").Clone();
        odd.NumberFormat.NegativeSign = "~";
        odd.NumberFormat.NumberDecimalSeparator = ",";
        odd.DateTimeFormat.TimeSeparator = ".";

        var cultured = await SaveAndReadPayloadAsync(NewUser(), inCulture: odd);

        Assert.Equal(invariant, cultured);
    }

    [Fact]
    public async Task SaveChanges_IdAndTraitsThroughValueConverters_WritesTheProviderValues()
    {
        var user = NewUser();
        user.Id = new CustomerKey(-7);

        var payload = await SaveAndReadPayloadAsync(user, inCulture: null);

        var root = JsonDocument.Parse(payload).RootElement;
        Assert.Equal("-7", root.GetProperty("user_id").GetString());
        Assert.Equal("ada@example.com", root.GetProperty("traits").GetProperty("email").GetString());
        Assert.Equal(3, root.GetProperty("traits").GetProperty("level").GetInt32());
        Assert.Equal("-7", Assert.Single(await RowsAsync()).UserId);
    }

    [Fact]
    public async Task SaveChanges_TraitChangedThroughAConverter_WritesAnEventOnlyWhenTheValueChanged()
    {
        var user = NewUser();
        await SaveAndReadPayloadAsync(user, inCulture: null);
        await using (var context = new KindsContext(database, clock))
        {
            var loaded = await context.Users.SingleAsync();
            loaded.Email = new EmailAddress("ada@example.com");
            await context.SaveChangesAsync();
            loaded.Email = new EmailAddress("lovelace@example.com");
            await context.SaveChangesAsync();
        }

        var rows = await RowsAsync();
        Assert.Equal(2, rows.Count);
        Assert.Equal("lovelace@example.com", OutboxReader.Json(rows[1]).GetProperty("traits").GetProperty("email").GetString());
    }

    [Fact]
    public async Task SaveChanges_OutboxUnderAnotherTableName_WritesThereAndIsDelivered()
    {
        await using (var context = new RenamedOutboxContext(database))
        {
            await context.Database.EnsureCreatedAsync();
            context.Users.Add(new RenamedUser { Id = "renamed-1", Email = "r@example.com" });
            await context.SaveChangesAsync();
        }

        var tables = await TablesAsync();
        Assert.Contains("identify_queue", tables);
        Assert.DoesNotContain("thrivestack_outbox", tables);
        Assert.Equal(1L, await CountAsync("identify_queue"));

        await using var standIn = await ThrivestackStandIn.StartAsync();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var activity = new DatabaseActivity();
        builder.Services.AddDbContext<RenamedOutboxContext>(o => o.UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor().AddInterceptors(activity));
        builder.Services.AddThrivestackIdentify<RenamedOutboxContext>(o =>
        {
            o.Endpoint = standIn.Endpoint;
            o.ApiToken = standIn.ApiToken;
            o.PollInterval = TimeSpan.FromMilliseconds(100);
        });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            await standIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(30));
            Assert.Equal("r@example.com", Assert.Single(standIn.EventsFor("renamed-1")).Traits!.Value.GetProperty("email").GetString());
            // The dispatcher's context signals each of its commands: the count is read again after each one.
            var left = await activity.WaitUntilAsync(() => CountAsync("identify_queue"), n => n == 0, TimeSpan.FromSeconds(30), n => $"{n} rows left in identify_queue");
            Assert.Equal(0L, left);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private static KindsUser NewUser() => new()
    {
        Id = new CustomerKey(1001),
        Email = new EmailAddress("ada@example.com"),
        Level = new Level(3),
        Nickname = "ada",
        Balance = 1234.5678m,
        Ratio = -0.25,
        SeenUtc = Seen,
        SeenLocal = new DateTime(2026, 3, 4, 5, 6, 7, 890, DateTimeKind.Local),
        SeenUnspecified = DateTime.SpecifyKind(Seen, DateTimeKind.Unspecified),
        SeenOffset = new DateTimeOffset(2026, 3, 4, 5, 6, 7, 890, TimeSpan.FromHours(2)),
        Birthday = new DateOnly(1990, 7, 15),
        Wakes = new TimeOnly(6, 30, 15, 250),
        Homepage = new Uri("https://example.com/a?b=c"),
        Tier = Tier.Gold,
        Reference = Guid.Parse("0F8FAD5B-D9CB-469F-A165-70867728950E"),
        Trial = new TimeSpan(1, 2, 3, 4),
        Admin = true,
        Verified = false,
        Tags = ["a", "b, c", "é"],
        NoTags = [],
        Seats = 42,
        Big = 9007199254740993L,
    };

    private async Task<JsonElement> SaveAndReadTraitsAsync(KindsUser user, CultureInfo? inCulture) =>
        JsonDocument.Parse(await SaveAndReadPayloadAsync(user, inCulture)).RootElement.GetProperty("traits").Clone();

    private async Task<string> SaveAndReadPayloadAsync(KindsUser user, CultureInfo? inCulture)
    {
        await using (var context = new KindsContext(database, clock))
        {
            await context.Database.EnsureDeletedAsync();
            await context.Database.EnsureCreatedAsync();
            var previous = CultureInfo.CurrentCulture;
            if (inCulture is not null)
            {
                CultureInfo.CurrentCulture = inCulture;
            }

            try
            {
                context.Users.Add(user);
                await context.SaveChangesAsync();
            }
            finally
            {
                CultureInfo.CurrentCulture = previous;
            }
        }

        return Assert.Single(await RowsAsync()).Payload;
    }

    private async Task<List<OutboxMessage>> RowsAsync()
    {
        await using var context = new KindsContext(database, clock);
        return await context.Set<OutboxMessage>().AsNoTracking().OrderBy(m => m.Id).ToListAsync();
    }

    private async Task<List<string>> TablesAsync()
    {
        await using var connection = new SqliteConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    private async Task<long> CountAsync(string table)
    {
        await using var connection = new SqliteConnection(database.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM \"{table}\"";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public enum Tier
    {
        Bronze,
        Gold,
    }

    public readonly record struct CustomerKey(long Value);

    public sealed record EmailAddress(string Value);

    public readonly record struct Level(int Value);

    public sealed class KindsUser
    {
        public CustomerKey Id { get; set; }

        public EmailAddress Email { get; set; } = new("");

        public Level Level { get; set; }

        public string? Nickname { get; set; }

        public decimal Balance { get; set; }

        public double Ratio { get; set; }

        public DateTime SeenUtc { get; set; }

        public DateTime SeenLocal { get; set; }

        public DateTime SeenUnspecified { get; set; }

        public DateTimeOffset SeenOffset { get; set; }

        public DateOnly? Birthday { get; set; }

        public TimeOnly Wakes { get; set; }

        public Uri? Homepage { get; set; }

        public Tier Tier { get; set; }

        public Guid Reference { get; set; }

        public TimeSpan Trial { get; set; }

        public bool Admin { get; set; }

        public bool Verified { get; set; }

        public List<string> Tags { get; set; } = [];

        public string[] NoTags { get; set; } = [];

        public int? Seats { get; set; }

        public long Big { get; set; }
    }

    public sealed class RenamedUser
    {
        public string Id { get; set; } = "";

        public string Email { get; set; } = "";
    }

    private sealed class KindsContext(SqliteTestDatabase database, TimeProvider clock) : DbContext
    {
        public DbSet<KindsUser> Users => Set<KindsUser>();

        protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder) =>
            optionsBuilder.UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(clock));

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<KindsUser>(user =>
            {
                user.Property(u => u.Id).HasConversion(k => k.Value, v => new CustomerKey(v)).ValueGeneratedNever();
                user.Property(u => u.Email).HasConversion(e => e.Value, v => new EmailAddress(v));
                user.Property(u => u.Level).HasConversion(l => l.Value, v => new Level(v));
                user.ToThrivestackUser(u => u.Id)
                    .HasTrait(u => u.Email, "email")
                    .HasTrait(u => u.Level, "level")
                    .HasTrait(u => u.Nickname, "nickname")
                    .HasTrait(u => u.Balance, "balance")
                    .HasTrait(u => u.Ratio, "ratio")
                    .HasTrait(u => u.SeenUtc, "seen_utc")
                    .HasTrait(u => u.SeenLocal, "seen_local")
                    .HasTrait(u => u.SeenUnspecified, "seen_unspecified")
                    .HasTrait(u => u.SeenOffset, "seen_offset")
                    .HasTrait(u => u.Birthday, "birthday")
                    .HasTrait(u => u.Wakes, "wakes")
                    .HasTrait(u => u.Homepage, "homepage")
                    .HasTrait(u => u.Tier, "tier")
                    .HasTrait(u => u.Reference, "reference")
                    .HasTrait(u => u.Trial, "trial")
                    .HasTrait(u => u.Admin, "admin")
                    .HasTrait(u => u.Verified, "verified")
                    .HasTrait(u => u.Tags, "tags")
                    .HasTrait(u => u.NoTags, "no_tags")
                    .HasTrait(u => u.Seats, "seats")
                    .HasTrait(u => u.Big, "big");
            });
        }
    }

    private sealed class RenamedOutboxContext : DbContext
    {
        private readonly SqliteTestDatabase? database;

        public RenamedOutboxContext(SqliteTestDatabase database)
        {
            this.database = database;
        }

        public RenamedOutboxContext(DbContextOptions<RenamedOutboxContext> options)
            : base(options)
        {
        }

        public DbSet<RenamedUser> Users => Set<RenamedUser>();

        protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder)
        {
            if (database is not null)
            {
                optionsBuilder.UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor();
            }
        }

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox("identify_queue");
            modelBuilder.Entity<RenamedUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");
        }
    }
}
