using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Tests.Sample;

/// <summary>
/// The README's first command runs the sample, which creates its database with <c>MigrateAsync</c>: EF refuses to
/// migrate a model that its migrations do not cover, so a change of the outbox's model needs a migration in the sample.
/// </summary>
public sealed class SampleMigrationsTests
{
    [Fact]
    public void SampleModel_AgainstItsMigrations_HasNoPendingChange()
    {
        // The context `dotnet ef migrations add` builds for the sample (its design-time factory; the sample's types are internal).
        var factoryType = Type.GetType("Thrivestack.EfCore.Sample.Model.DesignTimeDbContextFactory, Thrivestack.EfCore.Sample", throwOnError: true)!;
        var factory = Activator.CreateInstance(factoryType, nonPublic: true)!;
        using var context = (DbContext)factoryType.GetMethod("CreateDbContext")!.Invoke(factory, [Array.Empty<string>()])!;

        Assert.NotEmpty(context.Database.GetMigrations());
        Assert.False(context.Database.HasPendingModelChanges(), "The sample's model has changes its migrations do not cover: add a migration to samples/Thrivestack.EfCore.Sample (dotnet ef migrations add ...).");
    }
}
