using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>Every public entry of Thrivestack.EfCore refuses null and out-of-range arguments, naming the parameter.</summary>
public sealed class ArgumentValidationTests
{
    [Fact]
    public void AddThrivestackIdentifyInterceptor_NullArguments_Throw()
    {
        var builder = new DbContextOptionsBuilder();
        var typed = new DbContextOptionsBuilder<TestDbContext>();

        Null("optionsBuilder", () => ((DbContextOptionsBuilder)null!).AddThrivestackIdentifyInterceptor());
        Null("optionsBuilder", () => ((DbContextOptionsBuilder)null!).AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(TimeProvider.System)));
        Null("optionsBuilder", () => ((DbContextOptionsBuilder<TestDbContext>)null!).AddThrivestackIdentifyInterceptor());
        Null("optionsBuilder", () => ((DbContextOptionsBuilder<TestDbContext>)null!).AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(TimeProvider.System)));
        Null("configure", () => builder.AddThrivestackIdentifyInterceptor(null!));
        Null("configure", () => typed.AddThrivestackIdentifyInterceptor(null!));
        Null("timeProvider", () => builder.AddThrivestackIdentifyInterceptor(i => i.UseTimeProvider(null!)));
    }

    [Fact]
    public void AddThrivestackOutbox_NullOrBlankArguments_Throw()
    {
        Null("modelBuilder", () => ((ModelBuilder)null!).AddThrivestackOutbox());
        Null("tableName", () => new ModelBuilder().AddThrivestackOutbox(null!));
        Blank("tableName", () => new ModelBuilder().AddThrivestackOutbox(""));
        Blank("tableName", () => new ModelBuilder().AddThrivestackOutbox("  "));
    }

    [Fact]
    public void ToThrivestackUser_NullOrBlankArguments_Throw()
    {
        Null("builder", () => ((EntityTypeBuilder<NumberedUser>)null!).ToThrivestackUser(u => u.Id));
        Null("userId", () => Entity<NumberedUser>().ToThrivestackUser((Expression<Func<NumberedUser, int>>)null!));
        Null("builder", () => ((EntityTypeBuilder<NumberedUser>)null!).ToThrivestackUser("Id"));
        Null("userIdProperty", () => Entity<NumberedUser>().ToThrivestackUser((string)null!));
        Blank("userIdProperty", () => Entity<NumberedUser>().ToThrivestackUser(""));
        Null("builder", () => ((EntityTypeBuilder)null!).ToThrivestackUser("Id"));
        Null("userIdProperty", () => UntypedEntity<NumberedUser>().ToThrivestackUser(null!));
        Blank("userIdProperty", () => UntypedEntity<NumberedUser>().ToThrivestackUser(" "));
    }

    [Fact]
    public void ToThrivestackMembership_NullOrBlankArguments_Throw()
    {
        Null("builder", () => ((EntityTypeBuilder<WorkspaceMember>)null!).ToThrivestackMembership(m => m.UserId, m => m.WorkspaceId));
        Null("userId", () => Entity<WorkspaceMember>().ToThrivestackMembership((Expression<Func<WorkspaceMember, int>>)null!, m => m.WorkspaceId));
        Null("groupId", () => Entity<WorkspaceMember>().ToThrivestackMembership(m => m.UserId, (Expression<Func<WorkspaceMember, long>>)null!));
        Null("builder", () => ((EntityTypeBuilder)null!).ToThrivestackMembership("UserId", "WorkspaceId"));
        Null("userIdProperty", () => UntypedEntity<WorkspaceMember>().ToThrivestackMembership(null!, "WorkspaceId"));
        Null("groupIdProperty", () => UntypedEntity<WorkspaceMember>().ToThrivestackMembership("UserId", null!));
        Blank("userIdProperty", () => UntypedEntity<WorkspaceMember>().ToThrivestackMembership("", "WorkspaceId"));
        Blank("groupIdProperty", () => UntypedEntity<WorkspaceMember>().ToThrivestackMembership("UserId", " "));
    }

    [Fact]
    public void HasTrait_NullOrBlankArguments_Throw()
    {
        var typed = Entity<NumberedUser>().ToThrivestackUser(u => u.Id);
        var untyped = UntypedEntity<NumberedUser>().ToThrivestackUser("Id");

        Null("property", () => typed.HasTrait((Expression<Func<NumberedUser, string>>)null!, "email"));
        Null("traitKey", () => typed.HasTrait(u => u.Email, null!));
        Blank("traitKey", () => typed.HasTrait(u => u.Email, ""));
        Null("propertyPath", () => typed.HasTrait((string)null!, "email"));
        Blank("propertyPath", () => typed.HasTrait(" ", "email"));
        Null("traitKey", () => untyped.HasTrait("Email", null!));
        Blank("propertyPath", () => untyped.HasTrait("", "email"));
        Blank("traitKey", () => untyped.HasTrait("Email", "  "));
    }

    [Fact]
    public async Task EnqueueThrivestackIdentify_NullOrEmptyArguments_Throw()
    {
        await using var context = new TestDbContext(new DbContextOptionsBuilder<TestDbContext>().UseSqlite("Data Source=:memory:").Options);

        Null("context", () => ((DbContext)null!).EnqueueThrivestackIdentify("u"));
        Null("userId", () => context.EnqueueThrivestackIdentify(null!));
        Blank("userId", () => context.EnqueueThrivestackIdentify(""));
        Assert.Equal("context", (await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).EnqueueThrivestackIdentifyAsync("u"))).ParamName);
        Assert.Equal("userId", (await Assert.ThrowsAsync<ArgumentNullException>(() => context.EnqueueThrivestackIdentifyAsync(null!))).ParamName);
        Assert.Equal("userId", (await Assert.ThrowsAsync<ArgumentException>(() => context.EnqueueThrivestackIdentifyAsync(""))).ParamName);
        Assert.Empty(context.ChangeTracker.Entries());
    }

    [Fact]
    public async Task DeadLetterMethods_NullContextOrNonPositiveTake_Throw()
    {
        await using var context = new TestDbContext(new DbContextOptionsBuilder<TestDbContext>().UseSqlite("Data Source=:memory:").Options);

        Assert.Equal("context", (await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).GetThrivestackDeadLettersAsync())).ParamName);
        Assert.Equal("context", (await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).RequeueThrivestackDeadLettersAsync([1]))).ParamName);
        Assert.Equal("context", (await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).PurgeThrivestackDeadLettersAsync([1]))).ParamName);
        Assert.Equal("context", (await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).RequeueAllThrivestackDeadLettersAsync())).ParamName);
        Assert.Equal("context", (await Assert.ThrowsAsync<ArgumentNullException>(() => ((DbContext)null!).PurgeAllThrivestackDeadLettersAsync())).ParamName);
        Assert.Equal("ids", (await Assert.ThrowsAsync<ArgumentNullException>(() => context.RequeueThrivestackDeadLettersAsync(null!))).ParamName);
        Assert.Equal("ids", (await Assert.ThrowsAsync<ArgumentNullException>(() => context.PurgeThrivestackDeadLettersAsync(null!))).ParamName);
        Assert.Equal("take", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => context.GetThrivestackDeadLettersAsync(take: 0))).ParamName);
        Assert.Equal("take", (await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => context.GetThrivestackDeadLettersAsync(take: -1))).ParamName);
    }

    [Fact]
    public void AddThrivestackIdentify_NullArguments_Throw()
    {
        var services = new ServiceCollection();

        Null("services", () => ((IServiceCollection)null!).AddThrivestackIdentify<TestDbContext>(_ => { }));
        Null("services", () => ((IServiceCollection)null!).AddThrivestackIdentify<TestDbContext>(new ConfigurationBuilder().Build()));
        Null("configure", () => services.AddThrivestackIdentify<TestDbContext>((Action<ThrivestackOptions>)null!));
        Null("configuration", () => services.AddThrivestackIdentify<TestDbContext>((IConfiguration)null!));
        Assert.Empty(services);
    }

    [Fact]
    public void AddThrivestackOutboxHealthCheck_NullArguments_Throw()
    {
        Null("builder", () => ((IHealthChecksBuilder)null!).AddThrivestackOutboxCheck<TestDbContext>());
        Assert.Equal("degradedAfter", Assert.Throws<ArgumentOutOfRangeException>(() => new ServiceCollection().AddHealthChecks().AddThrivestackOutboxCheck<TestDbContext>(degradedAfter: TimeSpan.FromSeconds(-1))).ParamName);
    }

    private static EntityTypeBuilder<T> Entity<T>()
        where T : class => new ModelBuilder().Entity<T>();

    private static EntityTypeBuilder UntypedEntity<T>() => new ModelBuilder().Entity(typeof(T));

    private static void Null(string parameter, Action call) => Assert.Equal(parameter, Assert.Throws<ArgumentNullException>(call).ParamName);

    private static void Blank(string parameter, Action call)
    {
        var error = Assert.ThrowsAny<ArgumentException>(call);
        Assert.IsNotType<ArgumentNullException>(error);
        Assert.Equal(parameter, error.ParamName);
    }

    private static void Null(string parameter, Func<object> call) => Null(parameter, () => { call(); });

    private static void Blank(string parameter, Func<object> call) => Blank(parameter, () => { call(); });
}
