using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>An outbox under another table name and schema: written there (client and store-generated keys), claimed and delivered from there.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresOutboxSchemaTests(PostgresServer server)
{
    [Fact]
    public async Task SaveChanges_OutboxInAnotherSchemaAndTable_WritesThereAndIsDelivered()
    {
        var connectionString = await server.CreateDatabaseAsync("thrivestack");
        int numberedId;
        await using (var context = new SchemaContext(Options(connectionString)))
        {
            await context.Database.EnsureCreatedAsync();
            context.Users.Add(new SchemaUser { Id = "schema-1", Email = "s@example.com" });
            var numbered = new NumberedSchemaUser { Email = "n@example.com" };
            context.NumberedUsers.Add(numbered);
            await context.SaveChangesAsync();
            numberedId = numbered.Id;
        }

        Assert.Equal(["analytics.identify_queue"], await OutboxTablesAsync(connectionString));
        Assert.Equal(2L, await CountAsync(connectionString));

        await using var standIn = await ThrivestackStandIn.StartAsync();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var activity = new DatabaseActivity();
        builder.Services.AddDbContext<SchemaContext>(o => o.UseNpgsql(connectionString).AddThrivestackIdentifyInterceptor().AddInterceptors(activity));
        builder.Services.AddThrivestackIdentify<SchemaContext>(o =>
        {
            o.Endpoint = standIn.Endpoint;
            o.ApiToken = standIn.ApiToken;
            o.PollInterval = TimeSpan.FromMilliseconds(100);
        });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            await standIn.WaitForEventsAsync(2, TimeSpan.FromSeconds(30));
            Assert.Equal("s@example.com", Assert.Single(standIn.EventsFor("schema-1")).Traits!.Value.GetProperty("email").GetString());
            Assert.Single(standIn.EventsFor(numberedId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            // Delivered rows are deleted at once: count again (on a connection of its own) after each statement of the dispatcher.
            await activity.WaitUntilAsync(() => CountAsync(connectionString), count => count == 0, TimeSpan.FromSeconds(30), count => $"{count} row(s) left in the outbox.");
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private static DbContextOptions<SchemaContext> Options(string connectionString) =>
        new DbContextOptionsBuilder<SchemaContext>().UseNpgsql(connectionString).AddThrivestackIdentifyInterceptor().Options;

    private static async Task<List<string>> OutboxTablesAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_name LIKE '%outbox%' OR table_name LIKE '%queue%' ORDER BY 1",
            connection);
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    private static async Task<long> CountAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT COUNT(*) FROM analytics.identify_queue", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public sealed class SchemaUser
    {
        public string Id { get; set; } = "";

        public string Email { get; set; } = "";
    }

    public sealed class NumberedSchemaUser
    {
        public int Id { get; set; }

        public string Email { get; set; } = "";
    }

    private sealed class SchemaContext(DbContextOptions<SchemaContext> options) : DbContext(options)
    {
        public DbSet<SchemaUser> Users => Set<SchemaUser>();

        public DbSet<NumberedSchemaUser> NumberedUsers => Set<NumberedSchemaUser>();

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox("identify_queue", "analytics");
            modelBuilder.Entity<SchemaUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");
            modelBuilder.Entity<NumberedSchemaUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");
        }
    }
}
