using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Registers the interceptor and the mapping validation in EF's internal services. Being an options
/// extension makes registration idempotent: a second call replaces the first instead of adding an interceptor.
/// </summary>
internal sealed class ThrivestackIdentifyOptionsExtension(TimeProvider? timeProvider) : IDbContextOptionsExtension
{
    private DbContextOptionsExtensionInfo? info;

    public TimeProvider? TimeProvider { get; } = timeProvider;

    public DbContextOptionsExtensionInfo Info => info ??= new ExtensionInfo(this);

    public void ApplyServices(IServiceCollection services)
    {
        services.AddSingleton<IInterceptor, ThrivestackIdentifyInterceptor>();
        new EntityFrameworkServicesBuilder(services).TryAdd<IConventionSetPlugin, ThrivestackConventionSetPlugin>();
    }

    public void Validate(IDbContextOptions options)
    {
    }

    private sealed class ExtensionInfo(IDbContextOptionsExtension extension) : DbContextOptionsExtensionInfo(extension)
    {
        public override bool IsDatabaseProvider => false;

        public override string LogFragment => "ThrivestackIdentify ";

        public override int GetServiceProviderHashCode() => 0;

        public override bool ShouldUseSameServiceProvider(DbContextOptionsExtensionInfo other) => other is ExtensionInfo;

        public override void PopulateDebugInfo(IDictionary<string, string> debugInfo) =>
            debugInfo["Thrivestack:IdentifyInterceptor"] = "1";
    }
}
