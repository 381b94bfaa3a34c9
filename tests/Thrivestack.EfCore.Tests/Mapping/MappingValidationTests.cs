using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Mapping;

public sealed class MappingValidationTests
{
    [Fact]
    public void Model_TraitNamesMissingShadowProperty_FailsWithFix()
    {
        var error = BuildModel(m => m.Entity<NumberedUser>().ToThrivestackUser(u => u.Id).HasTrait("Nickname", "nickname"));
        Assert.Contains("'Nickname' is not a property of 'NumberedUser'", error.Message);
        Assert.Contains("Property<T>(\"Nickname\")", error.Message);
    }

    [Fact]
    public void Model_MembershipNamesMissingProperty_FailsWithFix()
    {
        var error = BuildModel(m => m.Entity<Workspace>().ToThrivestackMembership("OwnerId", "Id"));
        Assert.Contains("'OwnerId' is not a property of 'Workspace'", error.Message);
    }

    [Fact]
    public void Model_MappedUserWithoutOutbox_FailsWithFix()
    {
        var error = BuildModel(m => m.Entity<NumberedUser>().ToThrivestackUser(u => u.Id), addOutbox: false);
        Assert.Contains("AddThrivestackOutbox()", error.Message);
    }

    [Fact]
    public void Model_TraitOfUnsupportedType_FailsWithFix()
    {
        var error = BuildModel(m =>
        {
            m.Entity<NumberedUser>().Property<byte[]>("Blob");
            m.Entity<NumberedUser>().ToThrivestackUser(u => u.Id).HasTrait("Blob", "blob");
        });
        Assert.Contains("value converter", error.Message);
    }

    [Fact]
    public void Model_UserIdOfUnsupportedType_FailsWithFix()
    {
        var error = BuildModel(m =>
        {
            m.Entity<NumberedUser>().Property<DateTime>("Created");
            m.Entity<NumberedUser>().ToThrivestackUser("Created");
        });
        Assert.Contains("Ids must be string, Guid, int or long", error.Message);
    }

    [Fact]
    public void Model_TraitPathThroughNonOwnedNavigation_FailsWithFix()
    {
        var error = BuildModel(m => m.Entity<WorkspaceMember>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Workspace!.Name, "workspace"));
        Assert.Contains("owned reference", error.Message);
    }

    [Fact]
    public void Model_MappedEntityTypeIgnoredAfterwards_FailsWithFix()
    {
        var error = BuildModel(m =>
        {
            m.Entity<NumberedUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");
            m.Ignore<NumberedUser>();
        });
        Assert.Contains("ToThrivestackUser maps 'Thrivestack.EfCore.Tests.Infrastructure.NumberedUser'", error.Message);
        Assert.Contains("no longer an entity type", error.Message);
    }

    [Fact]
    public void HasTrait_SameKeyTwice_FailsWithFix()
    {
        var error = BuildModel(m =>
            m.Entity<NumberedUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email").HasTrait(u => u.Notes, "email"));
        Assert.Contains("mapped twice", error.Message);
    }

    [Fact]
    public void HasTrait_NotAPropertyAccess_FailsWithFix()
    {
        var error = BuildModel<ArgumentException>(m =>
            m.Entity<NumberedUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email.ToUpperInvariant(), "email"));
        Assert.Contains("u => u.Email", error.Message);
    }

    [Fact]
    public void ThrivestackTraits_HasAConstantForEveryDocumentedKey()
    {
        var keys = typeof(ThrivestackTraits).GetFields().Select(f => (string)f.GetRawConstantValue()!).ToArray();
        Assert.Equal(25, keys.Length);
        Assert.All(keys, k => Assert.StartsWith("enrichment_", k));
        Assert.Equal(25, keys.Distinct().Count());
    }

    private static InvalidOperationException BuildModel(Action<ModelBuilder> configure, bool addOutbox = true) =>
        BuildModel<InvalidOperationException>(configure, addOutbox);

    private static TException BuildModel<TException>(Action<ModelBuilder> configure, bool addOutbox = true)
        where TException : Exception
    {
        using var connection = new SqliteConnection("Data Source=:memory:");
        var options = new DbContextOptionsBuilder<ConfigurableContext>()
            .UseSqlite(connection)
            .AddThrivestackIdentifyInterceptor()
            .ReplaceService<IModelCacheKeyFactory, NoModelCaching>()
            .Options;
        using var context = new ConfigurableContext(options, m =>
        {
            if (addOutbox)
            {
                m.AddThrivestackOutbox();
            }

            configure(m);
        });
        return Assert.Throws<TException>(() => context.Model);
    }

    private sealed class ConfigurableContext(DbContextOptions options, Action<ModelBuilder> configure) : DbContext(options)
    {
        protected override void OnModelCreating(ModelBuilder modelBuilder) => configure(modelBuilder);
    }

    private sealed class NoModelCaching : IModelCacheKeyFactory
    {
        public object Create(DbContext context, bool designTime) => new object();
    }
}
