using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// The app's own save interceptors and domain-event handlers run during SaveChanges, after this library's interceptor
/// (EF runs injected interceptors before those added with <c>AddInterceptors</c>, whatever the order of the calls).
/// Whatever they change, ThriveStack ends with what was saved. Registered the way the Clean Architecture template does:
/// <c>options.AddInterceptors(sp.GetServices&lt;ISaveChangesInterceptor&gt;())</c>, before and after the library's call.
/// </summary>
public sealed class AppInterceptorCaptureTests : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_AppInterceptorRewritesNewUsersEmail_SendsTheSavedEmail(bool appInterceptorsFirst)
    {
        var host = await StartAsync(appInterceptorsFirst);
        var bob = new AppUser { Id = Guid.NewGuid(), Email = "bob@rewrite.test", FirstName = "Bob" };
        await SaveAsync(host, db => db.Users.Add(bob));

        await AssertThriveStackHasSavedEmailAsync(host, bob.Id, "final-bob@example.com");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_AppInterceptorRewritesAnEmailEdit_SendsTheSavedEmail(bool appInterceptorsFirst)
    {
        var host = await StartAsync(appInterceptorsFirst);
        var ada = new AppUser { Id = Guid.NewGuid(), Email = "ada@example.com" };
        await SaveAsync(host, db => db.Users.Add(ada));
        await SaveAsync(host, db => db.Users.Single(u => u.Id == ada.Id).Email = "ada2@rewrite.test");

        await AssertThriveStackHasSavedEmailAsync(host, ada.Id, "final-ada2@example.com");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_AppInterceptorSetsEmailOnSaveTouchingNoTrait_SendsAnEvent(bool appInterceptorsFirst)
    {
        var host = await StartAsync(appInterceptorsFirst);
        var user = new AppUser { Id = Guid.NewGuid(), Email = "before-sync@example.com" };
        await SaveAsync(host, db => db.Users.Add(user));
        await WaitForDeliveryAsync();

        // LoginCount is not a trait: only the app's interceptor turns this save into a trait change.
        await SaveAsync(host, db => db.Users.Single(u => u.Id == user.Id).LoginCount = RewritingInterceptor.SyncLoginCount);

        await AssertThriveStackHasSavedEmailAsync(host, user.Id, "synced@example.com");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_DomainEventHandlerChangesEmail_SendsTheSavedEmail(bool appInterceptorsFirst)
    {
        var host = await StartAsync(appInterceptorsFirst);
        var carol = new AppUser { Id = Guid.NewGuid(), Email = "carol@example.com" };
        await SaveAsync(host, db => db.Users.Add(carol));
        await WaitForDeliveryAsync();

        await SaveAsync(host, db =>
        {
            db.Audit.Add(new AuditEntry { Text = "carol finished onboarding" });
            host.Services.GetRequiredService<DomainEvents>().Raise(
                handler => handler.Set<AppUser>().Local.Single(u => u.Id == carol.Id).Email = "carol-done@example.com");
            _ = db.Users.Single(u => u.Id == carol.Id);
        });

        await AssertThriveStackHasSavedEmailAsync(host, carol.Id, "carol-done@example.com");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_DomainEventHandlerInsertsUser_SendsAnEventForThatUser(bool appInterceptorsFirst)
    {
        var host = await StartAsync(appInterceptorsFirst);
        var dave = new AppUser { Id = Guid.NewGuid(), Email = "dave@example.com", FirstName = "Dave" };

        await SaveAsync(host, db =>
        {
            db.Audit.Add(new AuditEntry { Text = "invitation accepted" });
            host.Services.GetRequiredService<DomainEvents>().Raise(handler => handler.Add(dave));
        });

        await AssertThriveStackHasSavedEmailAsync(host, dave.Id, "dave@example.com");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_DomainEventHandlerInsertsUserWithStoreGeneratedKey_SendsTheRealId(bool appInterceptorsFirst)
    {
        var host = await StartAsync(appInterceptorsFirst);
        var erin = new NumberedUser { Email = "erin@example.com", Name = "Erin" };

        // A single-row save: without a transaction of its own, EF would write the user alone.
        await SaveAsync(host, _ => host.Services.GetRequiredService<DomainEvents>().Raise(handler => handler.Add(erin)));

        await WaitForDeliveryAsync();
        Assert.True(erin.Id > 0);
        var events = harness.StandIn.EventsFor(erin.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("erin@example.com", Assert.Single(events).Traits!.Value.GetProperty("email").GetString());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SaveChanges_RolledBackSaveOfInterceptorAndHandlerChanges_SendsNothing(bool appInterceptorsFirst)
    {
        var host = await StartAsync(appInterceptorsFirst);
        var bob = new AppUser { Id = Guid.NewGuid(), Email = "bob@rewrite.test" };
        var dave = new AppUser { Id = Guid.NewGuid(), Email = "dave@example.com" };
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppEventsDbContext>();
            await using var transaction = await db.Database.BeginTransactionAsync();
            db.Users.Add(bob);
            host.Services.GetRequiredService<DomainEvents>().Raise(handler => handler.Add(dave));
            await db.SaveChangesAsync();
            await transaction.RollbackAsync();
        }

        // A later committed save is delivered; the rolled-back changes never reach the outbox.
        var marker = new AppUser { Id = Guid.NewGuid(), Email = "marker@example.com" };
        await SaveAsync(host, db => db.Users.Add(marker));
        await AssertThriveStackHasSavedEmailAsync(host, marker.Id, "marker@example.com");
        Assert.Empty(harness.StandIn.EventsFor(bob.Id.ToString()));
        Assert.Empty(harness.StandIn.EventsFor(dave.Id.ToString()));
    }

    [Fact]
    public async Task SaveChanges_LaterInterceptorTurnsDetectionOff_SaysTheSaveWentWithoutEvents()
    {
        var host = harness.BuildCustomHost(builder =>
        {
            builder.Services.AddDbContext<AppEventsDbContext>(options =>
            {
                harness.Database.Configure(options);
                options.AddThrivestackIdentifyInterceptor().AddInterceptors(new DetectionOff());
            });
            builder.Services.AddThrivestackIdentify<AppEventsDbContext>(o => harness.Defaults(o));
        });
        await host.StartAsync();

        await SaveAsync(host, db => db.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "unseen@example.com" }));

        Assert.Single(harness.Logs.Lines, l => l.Is(312) && l.Message.Contains(nameof(AppEventsDbContext), StringComparison.Ordinal));
    }

    private async Task<IHost> StartAsync(bool appInterceptorsFirst)
    {
        var host = harness.BuildCustomHost(builder =>
        {
            builder.Services.AddSingleton<DomainEvents>();
            builder.Services.AddScoped<ISaveChangesInterceptor, RewritingInterceptor>();
            builder.Services.AddScoped<ISaveChangesInterceptor, DomainEventDispatcher>();
            builder.Services.AddDbContext<AppEventsDbContext>((sp, options) =>
            {
                harness.Database.Configure(options);
                if (appInterceptorsFirst)
                {
                    options.AddInterceptors(sp.GetServices<ISaveChangesInterceptor>());
                    options.AddThrivestackIdentifyInterceptor();
                }
                else
                {
                    options.AddThrivestackIdentifyInterceptor();
                    options.AddInterceptors(sp.GetServices<ISaveChangesInterceptor>());
                }
            });
            builder.Services.AddThrivestackIdentify<AppEventsDbContext>(o => harness.Defaults(o));
        });
        await host.StartAsync();
        return host;
    }

    private static async Task SaveAsync(IHost host, Action<AppEventsDbContext> change)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppEventsDbContext>();
        change(db);
        await db.SaveChangesAsync();
    }

    private Task WaitForDeliveryAsync() => harness.WaitForOutboxAsync(rows => rows.Count == 0);

    private async Task AssertThriveStackHasSavedEmailAsync(IHost host, Guid userId, string expected)
    {
        await WaitForDeliveryAsync();
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var saved = await scope.ServiceProvider.GetRequiredService<AppEventsDbContext>().Users.AsNoTracking().SingleAsync(u => u.Id == userId);
            Assert.Equal(expected, saved.Email);
        }

        var events = harness.StandIn.EventsFor(userId.ToString());
        Assert.NotEmpty(events);
        Assert.Equal(expected, events[^1].Traits!.Value.GetProperty("email").GetString());
        Assert.DoesNotContain(events, e => e.Traits!.Value.GetProperty("email").GetString()!.EndsWith("@rewrite.test", StringComparison.Ordinal));
    }

    /// <summary>The app's context, registered with the app's interceptors from DI.</summary>
    public sealed class AppEventsDbContext(DbContextOptions<AppEventsDbContext> options) : TestDbContext(options);

    /// <summary>
    /// An auditing-style interceptor: enumerates the entries (which runs DetectChanges) and sets entity properties
    /// directly, as such interceptors do.
    /// </summary>
    private sealed class RewritingInterceptor : SaveChangesInterceptor
    {
        public const int SyncLoginCount = 42;

        public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
        {
            Rewrite(eventData.Context!);
            return result;
        }

        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            Rewrite(eventData.Context!);
            return ValueTask.FromResult(result);
        }

        private static void Rewrite(DbContext context)
        {
            foreach (var entry in context.ChangeTracker.Entries<AppUser>().Where(e => e.State is EntityState.Added or EntityState.Modified))
            {
                var user = entry.Entity;
                if (user.Email.EndsWith("@rewrite.test", StringComparison.Ordinal))
                {
                    user.Email = $"final-{user.Email[..user.Email.IndexOf('@', StringComparison.Ordinal)]}@example.com";
                }

                if (user.LoginCount == SyncLoginCount)
                {
                    user.Email = "synced@example.com";
                }
            }
        }
    }

    /// <summary>An interceptor that turns automatic change detection off during the save, as some bulk helpers do.</summary>
    private sealed class DetectionOff : SaveChangesInterceptor
    {
        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            eventData.Context!.ChangeTracker.AutoDetectChangesEnabled = false;
            return ValueTask.FromResult(result);
        }
    }

    /// <summary>Domain events raised by the app's code, dispatched to their handlers during SavingChanges (MediatR-free).</summary>
    private sealed class DomainEvents
    {
        private readonly ConcurrentQueue<Action<DbContext>> pending = new();

        public void Raise(Action<DbContext> handler) => pending.Enqueue(handler);

        public void DispatchAll(DbContext context)
        {
            while (pending.TryDequeue(out var handler))
            {
                handler(context);
            }
        }
    }

    private sealed class DomainEventDispatcher(DomainEvents events) : SaveChangesInterceptor
    {
        public override InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
        {
            events.DispatchAll(eventData.Context!);
            return result;
        }

        public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            events.DispatchAll(eventData.Context!);
            return ValueTask.FromResult(result);
        }
    }
}
