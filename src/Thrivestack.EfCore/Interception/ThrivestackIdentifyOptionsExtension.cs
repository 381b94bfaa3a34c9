using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Registers the interceptor and the mapping validation in EF's internal services. Being an options
/// extension makes registration idempotent: a second call replaces the first instead of adding an interceptor.
/// Immutable: a second <c>AddThrivestackIdentifyInterceptor</c> clones it with its changes, keeping earlier settings.
/// </summary>
internal sealed class ThrivestackIdentifyOptionsExtension : IDbContextOptionsExtension
{
    private DbContextOptionsExtensionInfo? info;

    public ThrivestackIdentifyOptionsExtension()
    {
    }

    private ThrivestackIdentifyOptionsExtension(ThrivestackIdentifyOptionsExtension copyFrom)
    {
        TimeProvider = copyFrom.TimeProvider;
        DispatchedElsewhere = copyFrom.DispatchedElsewhere;
    }

    /// <summary>The clock that stamps events, when the application chose one for this context.</summary>
    public TimeProvider? TimeProvider { get; private init; }

    /// <summary>The application said another process runs the dispatcher for this context's outbox.</summary>
    public bool DispatchedElsewhere { get; private init; }

    public DbContextOptionsExtensionInfo Info => info ??= new ExtensionInfo(this);

    /// <summary>The facts of the options this extension belongs to, once read (a cache: not a setting, not in <see cref="Info"/>).</summary>
    internal OptionsFacts? Facts { get; set; }

    public ThrivestackIdentifyOptionsExtension WithTimeProvider(TimeProvider timeProvider) => new(this) { TimeProvider = timeProvider };

    public ThrivestackIdentifyOptionsExtension WithDispatchedElsewhere() => new(this) { DispatchedElsewhere = true };

    public void ApplyServices(IServiceCollection services)
    {
        services.AddSingleton<IInterceptor, ThrivestackIdentifyInterceptor>();
        services.AddSingleton(static provider => SaveCommandInterceptor.For(provider));
        services.AddScoped<SaveState>();
        services.AddScoped<IResettableService>(static provider => provider.GetRequiredService<SaveState>());
        new EntityFrameworkServicesBuilder(services).TryAdd<IConventionSetPlugin, ThrivestackConventionSetPlugin>();
    }

    public void Validate(IDbContextOptions options)
    {
    }

    // The settings are read from the options per context (OptionsFacts), never by EF's internal services: one provider serves all.
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
