using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Testing;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Identity;

/// <summary>An app whose users are ASP.NET Core Identity's <see cref="IdentityUser"/>, mapped with two lines.</summary>
public sealed class IdentityAppDbContext(DbContextOptions<IdentityAppDbContext> options) : IdentityDbContext<IdentityUser>(options)
{
    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.AddThrivestackOutbox();
        builder.Entity<IdentityUser>()
            .ToThrivestackUser(u => u.Id)
            .HasTrait(u => u.Email, "email")
            .HasTrait(u => u.UserName, ThrivestackTraits.FullName);
    }
}

/// <summary>
/// ASP.NET Core Identity works out of the box: <see cref="UserManager{TUser}"/> saves through the app's context, so
/// the interceptor sees its inserts and updates like any other SaveChanges. Real SQLite in a temporary file.
/// </summary>
public sealed class IdentityUserTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();
    private ServiceProvider services = null!;

    public async Task InitializeAsync()
    {
        var collection = new ServiceCollection();
        AddIdentityApp(collection, database);
        services = collection.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true, ValidateOnBuild = true });
        await using var scope = services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<IdentityAppDbContext>().Database.EnsureCreatedAsync();
    }

    public async Task DisposeAsync()
    {
        await services.DisposeAsync();
        await database.DisposeAsync();
    }

    [Fact]
    public async Task CreateAsync_NewUser_WritesOneRowWithTheUsersIdAndEmail()
    {
        var user = await CreateUserAsync(services, "ada", "ada@example.com");

        var row = Assert.Single(await RowsAsync());
        Assert.Equal(user.Id, row.UserId);
        Assert.Null(row.GroupId);
        Assert.Equal(OutboxRowState.Pending, row.State);
        var payload = JsonDocument.Parse(row.Payload).RootElement;
        Assert.Equal(user.Id, payload.GetProperty("user_id").GetString());
        var traits = payload.GetProperty("traits");
        Assert.Equal("ada@example.com", traits.GetProperty("email").GetString());
        Assert.Equal("ada", traits.GetProperty(ThrivestackTraits.FullName).GetString());
        Assert.Equal(2, traits.EnumerateObject().Count());
    }

    [Fact]
    public async Task SetEmailAsync_ChangedEmail_WritesASecondRowWithTheNewEmail()
    {
        var user = await CreateUserAsync(services, "ada", "ada@example.com");

        await WithUserManagerAsync(services, user.Id, (manager, u) => manager.SetEmailAsync(u, "ada@lovelace.example"));

        var rows = await RowsAsync();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(user.Id, r.UserId));
        var traits = JsonDocument.Parse(rows[1].Payload).RootElement.GetProperty("traits");
        Assert.Equal("ada@lovelace.example", traits.GetProperty("email").GetString());
        Assert.Equal("ada", traits.GetProperty(ThrivestackTraits.FullName).GetString());
        Assert.Equal("ada@example.com", JsonDocument.Parse(rows[0].Payload).RootElement.GetProperty("traits").GetProperty("email").GetString());
    }

    [Fact]
    public async Task SetUserNameAsync_ChangedUserName_WritesARowWithTheNewFullName()
    {
        var user = await CreateUserAsync(services, "ada", "ada@example.com");

        await WithUserManagerAsync(services, user.Id, (manager, u) => manager.SetUserNameAsync(u, "ada.lovelace"));

        var rows = await RowsAsync();
        Assert.Equal(2, rows.Count);
        var traits = JsonDocument.Parse(rows[1].Payload).RootElement.GetProperty("traits");
        Assert.Equal("ada.lovelace", traits.GetProperty(ThrivestackTraits.FullName).GetString());
        Assert.Equal("ada@example.com", traits.GetProperty("email").GetString());
    }

    [Fact]
    public async Task UserManagerUpdates_TouchingNoMappedTrait_WriteNoRow()
    {
        var user = await CreateUserAsync(services, "ada", "ada@example.com");
        var before = await LoadUserAsync(user.Id);

        // Each of these saves the user through UserStore.UpdateAsync (new ConcurrencyStamp, and the property named)
        // but changes neither Email nor UserName.
        var operations = new (string Name, Func<UserManager<IdentityUser>, IdentityUser, Task<IdentityResult>> Run)[]
        {
            ("AccessFailedAsync", (manager, u) => manager.AccessFailedAsync(u)),
            ("UpdateSecurityStampAsync", (manager, u) => manager.UpdateSecurityStampAsync(u)),
            ("SetPhoneNumberAsync", (manager, u) => manager.SetPhoneNumberAsync(u, "+44 20 7946 0001")),
            ("SetTwoFactorEnabledAsync", (manager, u) => manager.SetTwoFactorEnabledAsync(u, true)),
            ("UpdateAsync (nothing changed)", (manager, u) => manager.UpdateAsync(u)),
        };
        var wroteRows = new List<string>();
        foreach (var (name, run) in operations)
        {
            var count = (await RowsAsync()).Count;
            await WithUserManagerAsync(services, user.Id, run);
            var written = (await RowsAsync()).Count - count;
            if (written != 0)
            {
                wroteRows.Add($"{name} wrote {written}");
            }
        }

        // The updates did reach the database, so "no row" is not "no save".
        var after = await LoadUserAsync(user.Id);
        Assert.Equal(1, after.AccessFailedCount);
        Assert.NotEqual(before.SecurityStamp, after.SecurityStamp);
        Assert.NotEqual(before.ConcurrencyStamp, after.ConcurrencyStamp);
        Assert.Equal("+44 20 7946 0001", after.PhoneNumber);
        Assert.True(after.TwoFactorEnabled);

        Assert.True(wroteRows.Count == 0, $"Updates that change no mapped trait wrote identify rows: {string.Join("; ", wroteRows)}.");
        var row = Assert.Single(await RowsAsync());
        Assert.Equal(user.Id, row.UserId);
    }

    [Fact]
    public async Task TrackedChange_OfAnUnmappedIdentityUserProperty_WritesNoRow()
    {
        // The same kind of change as AccessFailedAsync, but saved as plain change tracking (no DbContext.Update).
        var user = await CreateUserAsync(services, "ada", "ada@example.com");
        await using (var scope = services.CreateAsyncScope())
        {
            var context = scope.ServiceProvider.GetRequiredService<IdentityAppDbContext>();
            var tracked = await context.Users.SingleAsync(u => u.Id == user.Id);
            tracked.AccessFailedCount++;
            tracked.ConcurrencyStamp = Guid.NewGuid().ToString();
            await context.SaveChangesAsync();
        }

        Assert.Equal(1, (await LoadUserAsync(user.Id)).AccessFailedCount);
        Assert.Single(await RowsAsync());
    }

    [Fact]
    public async Task Dispatcher_IdentityUsers_ArriveAtTheStandIn()
    {
        await using var standIn = await ThrivestackStandIn.StartAsync();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        AddIdentityApp(builder.Services, database);
        builder.Services.AddThrivestackIdentify<IdentityAppDbContext>(o =>
        {
            o.Endpoint = standIn.Endpoint;
            o.ApiToken = standIn.ApiToken;
            o.PollInterval = TimeSpan.FromMilliseconds(200);
            o.RequestTimeout = TimeSpan.FromSeconds(10);
        });
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var user = await CreateUserAsync(host.Services, "grace", "grace@example.com");
            await standIn.WaitForEventsAsync(1, TimeSpan.FromSeconds(30));
            await WithUserManagerAsync(host.Services, user.Id, (manager, u) => manager.SetEmailAsync(u, "grace@hopper.example"));
            await standIn.WaitForEventsAsync(2, TimeSpan.FromSeconds(30));
            await WaitForEmptyOutboxAsync(); // delivered rows are deleted at once by default

            var events = standIn.EventsFor(user.Id);
            Assert.Equal(2, events.Count);
            Assert.Equal(["grace@example.com", "grace@hopper.example"], events.Select(e => e.Traits!.Value.GetProperty("email").GetString()));
            Assert.All(events, e => Assert.Equal("grace", e.Traits!.Value.GetProperty(ThrivestackTraits.FullName).GetString()));
            Assert.All(standIn.Requests, r => Assert.Equal(200, r.StatusCode));
            Assert.Equal(2, standIn.AcceptedEventCount);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private static void AddIdentityApp(IServiceCollection services, SqliteTestDatabase database)
    {
        services.AddLogging();
        services.AddDbContext<IdentityAppDbContext>(o => database.Configure(o.AddThrivestackIdentifyInterceptor()));
        services.AddIdentityCore<IdentityUser>()
            .AddEntityFrameworkStores<IdentityAppDbContext>();
    }

    /// <summary>Registers a user in a scope of its own, like one sign-up request.</summary>
    private static async Task<IdentityUser> CreateUserAsync(IServiceProvider provider, string userName, string email)
    {
        await using var scope = provider.CreateAsyncScope();
        var manager = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        var user = new IdentityUser { UserName = userName, Email = email };
        AssertSucceeded(await manager.CreateAsync(user));
        return user;
    }

    /// <summary>Loads the user in a fresh scope and runs one <see cref="UserManager{TUser}"/> operation, like one request.</summary>
    private static async Task WithUserManagerAsync(IServiceProvider provider, string userId, Func<UserManager<IdentityUser>, IdentityUser, Task<IdentityResult>> operation)
    {
        await using var scope = provider.CreateAsyncScope();
        var manager = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        var user = await manager.FindByIdAsync(userId) ?? throw new InvalidOperationException($"User {userId} not found.");
        AssertSucceeded(await operation(manager, user));
    }

    private static void AssertSucceeded(IdentityResult result) =>
        Assert.True(result.Succeeded, string.Join("; ", result.Errors.Select(e => $"{e.Code}: {e.Description}")));

    private async Task<IdentityUser> LoadUserAsync(string userId)
    {
        await using var scope = services.CreateAsyncScope();
        var context = scope.ServiceProvider.GetRequiredService<IdentityAppDbContext>();
        return await context.Users.AsNoTracking().SingleAsync(u => u.Id == userId);
    }

    /// <summary>Waits until the outbox is empty, reading it again whenever one of the app's contexts touched the database.</summary>
    private Task WaitForEmptyOutboxAsync() =>
        database.Activity.WaitUntilAsync(RowsAsync, rows => rows.Count == 0, TimeSpan.FromSeconds(30), rows => $"The outbox still holds {rows.Count} row(s) after 30 s.");

    /// <summary>Reads the outbox through a context of its own, which does not signal the database's activity.</summary>
    private async Task<List<OutboxMessage>> RowsAsync()
    {
        var options = new DbContextOptionsBuilder<IdentityAppDbContext>().UseSqlite(database.ConnectionString).AddThrivestackIdentifyInterceptor().Options;
        await using var context = new IdentityAppDbContext(options);
        return await context.Set<OutboxMessage>().AsNoTracking().OrderBy(m => m.Id).ToListAsync();
    }
}
