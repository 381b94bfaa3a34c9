using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// SQLite, with a model of its own (a model runtime initializer of its own gives it an EF service provider and model
/// cache of its own, so no other test's model changes) whose dialect is the portable one.
/// </summary>
public sealed class PortableSqliteTestDatabase : TestDatabase
{
    private readonly SqliteTestDatabase file = new();

    protected override void ConfigureProvider(DbContextOptionsBuilder builder) =>
        builder.UseSqlite(file.ConnectionString).ReplaceService<IModelRuntimeInitializer, PortableModelInitializer>();

    public override async Task CreateSchemaAsync()
    {
        await base.CreateSchemaAsync();
        await using var context = CreateContext();
        await context.Database.ExecuteSqlRawAsync("PRAGMA journal_mode = WAL;");
    }

    public override DbConnection CreateConnection() => file.CreateConnection();

    public override ValueTask DisposeAsync() => file.DisposeAsync();
}

/// <summary>Gives every runtime model it initializes the portable dialect, before anything asks for the model's dialect.</summary>
internal sealed class PortableModelInitializer(ModelRuntimeInitializerDependencies dependencies, RelationalModelRuntimeInitializerDependencies relationalDependencies)
    : RelationalModelRuntimeInitializer(dependencies, relationalDependencies)
{
    protected override void InitializeModel(IModel model, bool designTime, bool prevalidation)
    {
        base.InitializeModel(model, designTime, prevalidation);
        if (!prevalidation)
        {
            model.SetRuntimeAnnotation(ThrivestackAnnotationNames.Dialect, PortableDialect.Instance);
        }
    }
}
