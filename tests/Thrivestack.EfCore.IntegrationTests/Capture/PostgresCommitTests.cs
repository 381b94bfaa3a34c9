using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>
/// On PostgreSQL the outbox rows of a save EF sends as one command without a transaction ride in that command: a
/// one-user signup costs the round trips of the same save without the library. The rows of a save in EF's own
/// transaction travel with its COMMIT: a profile edit costs the round trips of the same save in a transaction, not one
/// more; an interceptor of the application that acts before commits still finds the transaction open.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresCommitTests(PostgresServer server) : PostgresSchemaTests(server)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_OneNewUser_CostsTheRoundTripsOfTheSameSaveWithoutTheLibrary(bool async)
    {
        await using var counter = RoundTripCounter(out var relayed);
        var withoutOutbox = new DbContextOptionsBuilder<TestDbContext>().UseNpgsql(relayed).Options;
        var withOutbox = new DbContextOptionsBuilder<TestDbContext>().UseNpgsql(relayed).AddThrivestackIdentifyInterceptor().Options;
        var baseline = await RoundTripsOfSave(counter, withoutOutbox, async, inTransaction: false, AddUser);
        var captured = await RoundTripsOfSave(counter, withOutbox, async, inTransaction: false, AddUser);

        Assert.Equal(baseline, captured);
        Assert.Single(await OutboxReader.RowsAsync(Database));
        await using var check = Database.CreateContext();
        Assert.Equal(2, await check.Users.CountAsync());
    }

    [Fact]
    public void AddThrivestackIdentifyInterceptor_Npgsql_RegistersTheCommandInterceptor()
    {
        using var context = Database.CreateContext();
        Assert.Contains(context.GetService<IEnumerable<IInterceptor>>(), i => i is IDbCommandInterceptor);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_UserEdited_CostsTheRoundTripsOfTheSameSaveInEfsTransactionAndTheReadOfItsTraits(bool async)
    {
        await SeedUserAsync();
        await using var counter = RoundTripCounter(out var relayed);
        var withoutOutbox = new DbContextOptionsBuilder<TestDbContext>().UseNpgsql(relayed).Options;
        var withOutbox = new DbContextOptionsBuilder<TestDbContext>().UseNpgsql(relayed).AddThrivestackIdentifyInterceptor().Options;
        var baseline = await RoundTripsOfSave(counter, withoutOutbox, async, inTransaction: true, EditUser);
        var captured = await RoundTripsOfSave(counter, withOutbox, async, inTransaction: false, EditUser);

        // One more: the user's traits read back as saved (TraitReadBack); the rows still carry EF's COMMIT.
        Assert.Equal(baseline + 1, captured);
        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_DetachedUserUpdatedWhole_ReadsNothingBackAsItsSaveWritesEveryTrait(bool async)
    {
        int id;
        await using (var seed = Database.CreateContext())
        {
            var user = new NumberedUser { Email = "n@example.com", Name = "Nia" };
            seed.NumberedUsers.Add(user);
            await seed.SaveChangesAsync();
            id = user.Id;
        }

        await using var counter = RoundTripCounter(out var relayed);
        var withoutOutbox = new DbContextOptionsBuilder<TestDbContext>().UseNpgsql(relayed).Options;
        var withOutbox = new DbContextOptionsBuilder<TestDbContext>().UseNpgsql(relayed).AddThrivestackIdentifyInterceptor().Options;
        void UpdateWhole(TestDbContext context) => context.NumberedUsers.Update(new NumberedUser { Id = id, Email = "n@example.com", Name = $"Grace {Guid.NewGuid():N}" });
        var baseline = await RoundTripsOfSave(counter, withoutOutbox, async, inTransaction: true, UpdateWhole);
        var captured = await RoundTripsOfSave(counter, withOutbox, async, inTransaction: false, UpdateWhole);

        // Update() marks every trait modified: the row then holds the context's values, and no read is needed.
        Assert.Equal(baseline, captured);
        var last = (await OutboxReader.RowsAsync(Database)).OrderBy(r => r.Id).Last();
        Assert.StartsWith("Grace ", OutboxReader.Traits(last).GetProperty(ThrivestackTraits.FullName).GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_UserGuardedByXmin_ReadsNothingBackAsAStaleCopyCannotSave(bool async)
    {
        await using (var schema = Database.CreateContext())
        {
            await schema.Database.ExecuteSqlRawAsync("CREATE TABLE token_users (\"Id\" integer PRIMARY KEY, \"Name\" text, \"Email\" text); INSERT INTO token_users VALUES (1, 'Before', 'grace@example.com')");
        }

        await using var counter = RoundTripCounter(out var relayed);
        var withoutOutbox = new DbContextOptionsBuilder<TokenContext>().UseNpgsql(relayed).Options;
        var withOutbox = new DbContextOptionsBuilder<TokenContext>().UseNpgsql(relayed).AddThrivestackIdentifyInterceptor().Options;
        async Task<int> RoundTripsOfEdit(DbContextOptions<TokenContext> options, bool inTransaction)
        {
            await using var context = new TokenContext(options);
            context.Database.AutoTransactionBehavior = inTransaction ? AutoTransactionBehavior.Always : AutoTransactionBehavior.WhenNeeded;
            (await context.Users.SingleAsync()).Name = $"Grace {Guid.NewGuid():N}";
            var before = counter.ReadyForQuery;
            if (async)
            {
                await context.SaveChangesAsync();
            }
            else
            {
                context.SaveChanges();
            }

            return counter.ReadyForQuery - before;
        }

        // Only the name changes (the email trait is not written), yet nothing is read back: xmin changes with every write, so
        // a save from a copy older than the row fails, and the read-back would add nothing.
        Assert.Equal(await RoundTripsOfEdit(withoutOutbox, inTransaction: true), await RoundTripsOfEdit(withOutbox, inTransaction: false));
        var last = (await OutboxReader.RowsAsync(Database)).OrderBy(r => r.Id).Last();
        Assert.StartsWith("Grace ", OutboxReader.Traits(last).GetProperty(ThrivestackTraits.FullName).GetString(), StringComparison.Ordinal);

        await using var stale = new TokenContext(withOutbox);
        var loaded = await stale.Users.SingleAsync();
        await using (var other = new TokenContext(withOutbox))
        {
            (await other.Users.SingleAsync()).Name = "Other";
            await other.SaveChangesAsync();
        }

        loaded.Name = "Stale";
        await Assert.ThrowsAsync<DbUpdateConcurrencyException>(() => stale.SaveChangesAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_AppInterceptorActsBeforeCommit_FindsTheTransactionOpenAndTheRowsInIt(bool async)
    {
        await SeedUserAsync();
        var atCommit = new OutboxRowsAtCommit();
        var builder = new DbContextOptionsBuilder<TestDbContext>();
        Database.Configure(builder);
        await using (var context = new TestDbContext(builder.AddThrivestackIdentifyInterceptor().AddInterceptors(atCommit).Options))
        {
            EditUser(context);
            if (async)
            {
                await context.SaveChangesAsync();
            }
            else
            {
                context.SaveChanges();
            }
        }

        Assert.Equal((1L, true), atCommit.Seen);
        Assert.Single(await OutboxReader.RowsAsync(Database));
    }

    private PostgresRoundTripCounter RoundTripCounter(out string relayed)
    {
        var builder = new NpgsqlConnectionStringBuilder(Database.ConnectionString);
        var counter = new PostgresRoundTripCounter(builder.Host!, builder.Port);
        builder.Host = PostgresServer.LocalHost;
        builder.Port = counter.Port;
        builder.SslMode = SslMode.Disable;
        builder.ApplicationName = "round-trips";
        relayed = builder.ConnectionString;
        return counter;
    }

    private async Task SeedUserAsync()
    {
        await using var context = Database.CreateContext();
        context.Users.Add(NewUser());
        await context.SaveChangesAsync();
        await context.Database.ExecuteSqlRawAsync("DELETE FROM thrivestack_outbox");
    }

    private static void AddUser(TestDbContext context) => context.Users.Add(NewUser());

    private static void EditUser(TestDbContext context) => context.Users.Single().FirstName = "Grace" + Guid.NewGuid().ToString("N");

    private static async Task<int> RoundTripsOfSave(
        PostgresRoundTripCounter counter, DbContextOptions<TestDbContext> options, bool async, bool inTransaction, Action<TestDbContext> change)
    {
        // The first use opens the pooled connection; only the save of a context that opens it again is counted.
        await using (var warm = new TestDbContext(options))
        {
            await warm.Users.AnyAsync();
        }

        await using var context = new TestDbContext(options);
        if (inTransaction)
        {
            context.Database.AutoTransactionBehavior = AutoTransactionBehavior.Always;
        }

        change(context);
        var before = counter.ReadyForQuery;
        if (async)
        {
            await context.SaveChangesAsync();
        }
        else
        {
            context.SaveChanges();
        }

        return counter.ReadyForQuery - before;
    }

    private static AppUser NewUser() => new() { Id = Guid.NewGuid(), Email = $"{Guid.NewGuid():N}@example.com", FirstName = "Ada" };

    /// <summary>A user guarded by PostgreSQL's <c>xmin</c> as a concurrency token (EF's <c>IsRowVersion()</c> on a <c>uint</c>).</summary>
    private sealed class TokenUser
    {
        public int Id { get; set; }

        public string? Name { get; set; }

        public string? Email { get; set; }

        public uint Version { get; set; }
    }

    private sealed class TokenContext(DbContextOptions<TokenContext> options) : DbContext(options)
    {
        public DbSet<TokenUser> Users => Set<TokenUser>();

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<TokenUser>(user =>
            {
                user.ToTable("token_users");
                user.Property(u => u.Id).ValueGeneratedNever();
                user.Property(u => u.Version).IsRowVersion();
                user.ToThrivestackUser(u => u.Id).HasTrait(u => u.Name, ThrivestackTraits.FullName).HasTrait(u => u.Email, "email");
            });
        }
    }

    /// <summary>An application's interceptor that reads, inside the transaction about to commit, the outbox rows it holds.</summary>
    private sealed class OutboxRowsAtCommit : DbTransactionInterceptor
    {
        /// <summary>The outbox rows the interceptor saw, and whether its statement ran in a transaction that has written.</summary>
        public (long Rows, bool InWritingTransaction)? Seen { get; private set; }

        public override InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
        {
            Seen = Count(transaction);
            return result;
        }

        public override ValueTask<InterceptionResult> TransactionCommittingAsync(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default)
        {
            Seen = Count(transaction);
            return ValueTask.FromResult(result);
        }

        private static (long, bool) Count(DbTransaction transaction)
        {
            using var command = transaction.Connection!.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "SELECT count(*), txid_current_if_assigned() IS NOT NULL FROM thrivestack_outbox";
            using var reader = command.ExecuteReader();
            reader.Read();
            return (reader.GetInt64(0), reader.GetBoolean(1));
        }
    }
}
