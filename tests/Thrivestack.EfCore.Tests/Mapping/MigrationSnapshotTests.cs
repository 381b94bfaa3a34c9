using System.Reflection;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Migrations.Design;
using Microsoft.EntityFrameworkCore.Migrations.Operations;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Mapping;

/// <summary>
/// What <c>dotnet ef migrations add</c> sees, run in-process with EF's design-time services: the mapping
/// (ToThrivestackUser, HasTrait, ToThrivestackMembership) never reaches a migration snapshot.
/// </summary>
public sealed class MigrationSnapshotTests
{
    [Fact]
    public void SnapshotCode_HasTraitAndMembershipAdded_IsUnchangedAndNeedsNoOperation()
    {
        using var before = new DesignTime(m => m.Entity<AppUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email"));
        using var after = new DesignTime(m =>
        {
            m.Entity<AppUser>().ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.Address!.City, ThrivestackTraits.City);
            m.Entity<WorkspaceMember>().ToThrivestackMembership(w => w.UserId, w => w.WorkspaceId);
        });

        Assert.Equal(before.SnapshotCode(), after.SnapshotCode());
        Assert.Empty(after.Differences(before));
    }

    [Fact]
    public void SnapshotCode_MappedModel_KeepsTheOutboxButNoMappingAnnotation()
    {
        using var mapped = new DesignTime(m =>
        {
            m.Entity<AppUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");
            m.Entity<WorkspaceMember>().ToThrivestackMembership(w => w.UserId, w => w.WorkspaceId);
        });

        var snapshot = mapped.SnapshotCode();

        Assert.Contains("b.ToTable(\"thrivestack_outbox\"", snapshot);
        Assert.Contains("\"Thrivestack:Outbox\"", snapshot);
        Assert.Equal(1, CountOf(snapshot, "Thrivestack:"));
    }

    private static int CountOf(string text, string value) => (text.Length - text.Replace(value, "", StringComparison.Ordinal).Length) / value.Length;

    /// <summary>A context with its design-time services, as <c>dotnet ef</c> builds them for a SQLite app.</summary>
    private sealed class DesignTime : IDisposable
    {
        private readonly SqliteConnection connection = new("Data Source=:memory:");
        private readonly ConfigurableContext context;
        private readonly ServiceProvider services;

        public DesignTime(Action<ModelBuilder> configure, bool interceptor = true)
        {
            var options = new DbContextOptionsBuilder<ConfigurableContext>()
                .UseSqlite(connection)
                .ReplaceService<IModelCacheKeyFactory, NoModelCaching>();
            if (interceptor)
            {
                options.AddThrivestackIdentifyInterceptor();
            }

            context = new ConfigurableContext(options.Options, m =>
            {
                m.AddThrivestackOutbox();
                m.Entity<AppUser>().OwnsOne(u => u.Address);
                m.Entity<WorkspaceMember>();
                configure(m);
            });

            // The order of dotnet ef's DesignTimeServicesBuilder: the context's services first, so the provider's TryAdds keep them.
            var collection = new ServiceCollection().AddEntityFrameworkDesignTimeServices().AddDbContextDesignTimeServices(context);
            var provider = typeof(SqliteDbContextOptionsBuilderExtensions).Assembly;
            var providerServices = provider.GetCustomAttribute<DesignTimeProviderServicesAttribute>()!.TypeName;
            ((IDesignTimeServices)Activator.CreateInstance(provider.GetType(providerServices, throwOnError: true)!)!).ConfigureDesignTimeServices(collection);
            services = collection.BuildServiceProvider();
        }

        public string SnapshotCode() =>
            services.GetRequiredService<IMigrationsScaffolder>().ScaffoldMigration("Next", "Tests.Migrations").SnapshotCode;

        public IReadOnlyList<MigrationOperation> Differences(DesignTime source) =>
            services.GetRequiredService<IMigrationsModelDiffer>().GetDifferences(
                source.context.GetService<IDesignTimeModel>().Model.GetRelationalModel(),
                context.GetService<IDesignTimeModel>().Model.GetRelationalModel());

        public void Dispose()
        {
            services.Dispose();
            context.Dispose();
            connection.Dispose();
        }
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
