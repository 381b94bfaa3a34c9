using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Dispatch;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the hosted dispatcher that ships a context's identify outbox to ThriveStack.</summary>
public static class ThrivestackServiceCollectionExtensions
{
    /// <summary>
    /// Adds the dispatcher for <typeparamref name="TContext"/>'s outbox. Options are validated when the host
    /// starts. Calling it again for the same context adds configuration, not a second dispatcher.
    /// </summary>
    /// <typeparam name="TContext">The application's context; register it with <c>AddDbContext</c> or <c>AddDbContextPool</c>.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options, at least <see cref="ThrivestackOptions.ApiToken"/> or <see cref="ThrivestackOptions.TokenProvider"/>.</param>
    /// <returns>The same service collection, so calls can be chained.</returns>
    public static IServiceCollection AddThrivestackIdentify<TContext>(this IServiceCollection services, Action<ThrivestackOptions> configure)
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        AddCore<TContext>(services).Configure(configure);
        return services;
    }

    /// <summary>
    /// Adds the dispatcher for <typeparamref name="TContext"/>'s outbox with options bound from the
    /// <c>Thrivestack</c> section of <paramref name="configuration"/> (for example <c>Thrivestack:ApiToken</c>).
    /// </summary>
    /// <typeparam name="TContext">The application's context.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The application's configuration root; its <c>Thrivestack</c> section is bound.</param>
    /// <returns>The same service collection, so calls can be chained.</returns>
    public static IServiceCollection AddThrivestackIdentify<TContext>(this IServiceCollection services, IConfiguration configuration)
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        AddCore<TContext>(services).Bind(configuration.GetSection(ThrivestackOptions.SectionName));
        return services;
    }

    private static OptionsBuilder<ThrivestackOptions> AddCore<TContext>(IServiceCollection services)
        where TContext : DbContext
    {
        var name = ThrivestackRegistration.OptionsName<TContext>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<OutboxSignal>();
        services.TryAddSingleton<ThrivestackMetrics>();
        services.TryAddSingleton<DispatcherStatus<TContext>>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ThrivestackOptions>, ThrivestackOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, OutboxDispatcher<TContext>>());
        services.AddMetrics();
        if (!services.Any(d => d.ServiceType == typeof(DispatcherMarker<TContext>)))
        {
            services.AddSingleton<DispatcherMarker<TContext>>();
            services.AddHttpClient(name);
        }

        return services.AddOptions<ThrivestackOptions>(name).ValidateOnStart();
    }

    private sealed class DispatcherMarker<TContext>;
}
