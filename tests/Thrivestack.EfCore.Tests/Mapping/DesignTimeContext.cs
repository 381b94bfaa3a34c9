using System.Reflection;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.EntityFrameworkCore.Migrations.Design;
using Microsoft.EntityFrameworkCore.Migrations.Operations;
using Microsoft.EntityFrameworkCore.Scaffolding;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Mapping;

/// <summary>
/// A SQLite context of <see cref="MappedContext"/> with the design-time services that <c>dotnet ef</c> builds for it,
/// in-process: migration snapshots, the migrations differ and the compiled-model generator see what the tool sees.
/// The model has the outbox, <see cref="AppUser"/> (with an owned address) and <see cref="WorkspaceMember"/>; the
/// ThriveStack mapping is what the caller adds.
/// </summary>
internal sealed class DesignTimeContext : IDisposable
{
    private readonly SqliteConnection connection = new("Data Source=:memory:");
    private readonly ServiceProvider services;

    public DesignTimeContext(Action<ModelBuilder> mapping, bool interceptor = true)
    {
        var options = new DbContextOptionsBuilder<MappedContext>()
            .UseSqlite(connection)
            .ReplaceService<IModelCacheKeyFactory, NoModelCaching>();
        if (interceptor)
        {
            options.AddThrivestackIdentifyInterceptor();
        }

        Context = new MappedContext(options.Options, Model(mapping));

        // The order of dotnet ef's DesignTimeServicesBuilder: the context's services first, so the provider's TryAdds keep them.
        var collection = new ServiceCollection().AddEntityFrameworkDesignTimeServices().AddDbContextDesignTimeServices(Context);
        var provider = typeof(SqliteDbContextOptionsBuilderExtensions).Assembly;
        var providerServices = provider.GetCustomAttribute<DesignTimeProviderServicesAttribute>()!.TypeName;
        ((IDesignTimeServices)Activator.CreateInstance(provider.GetType(providerServices, throwOnError: true)!)!).ConfigureDesignTimeServices(collection);
        services = collection.BuildServiceProvider();
    }

    public MappedContext Context { get; }

    /// <summary>The OnModelCreating of the test's model: the outbox, the entity types, then <paramref name="mapping"/>.</summary>
    public static Action<ModelBuilder> Model(Action<ModelBuilder> mapping) => m =>
    {
        m.AddThrivestackOutbox();
        m.Entity<AppUser>().OwnsOne(u => u.Address);
        m.Entity<WorkspaceMember>();
        mapping(m);
    };

    public IModel DesignTimeModel => Context.GetService<IDesignTimeModel>().Model;

    /// <summary>The <c>AppDbContextModelSnapshot.cs</c> that <c>dotnet ef migrations add</c> would write.</summary>
    public string SnapshotCode() =>
        services.GetRequiredService<IMigrationsScaffolder>().ScaffoldMigration("Next", "Tests.Migrations").SnapshotCode;

    /// <summary>The operations of a migration from <paramref name="source"/>'s model to this one.</summary>
    public IReadOnlyList<MigrationOperation> Differences(DesignTimeContext source) =>
        services.GetRequiredService<IMigrationsModelDiffer>().GetDifferences(
            source.DesignTimeModel.GetRelationalModel(),
            DesignTimeModel.GetRelationalModel());

    /// <summary>The files that <c>dotnet ef dbcontext optimize</c> would write.</summary>
    public IReadOnlyCollection<ScaffoldedFile> CompiledModelFiles()
    {
        var options = new CompiledModelCodeGenerationOptions
        {
            ContextType = typeof(MappedContext),
            ModelNamespace = "Tests.CompiledModels",
            Language = "C#",
            UseNullableReferenceTypes = true,
        };
        return services.GetRequiredService<ICompiledModelCodeGeneratorSelector>().Select(options).GenerateModel(DesignTimeModel, options);
    }

    public void Dispose()
    {
        services.Dispose();
        Context.Dispose();
        connection.Dispose();
    }

    private sealed class NoModelCaching : IModelCacheKeyFactory
    {
        public object Create(DbContext context, bool designTime) => new object();
    }
}
