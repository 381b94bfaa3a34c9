using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Hosting;
using Thrivestack.EfCore.Telemetry;

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
    /// <returns>A builder to configure the options from services or to extend the dispatcher's HTTP client.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="configure"/> is <see langword="null"/>.</exception>
    /// <exception cref="OptionsValidationException">
    /// Not thrown by this call: the host throws it when it starts and an option is invalid (the message names the option, its value and the fix).
    /// </exception>
    /// <exception cref="InvalidOperationException">
    /// Not thrown by this call: the host throws it when it starts and two dispatched contexts map the same outbox table on one database.
    /// </exception>
    public static ThrivestackIdentifyBuilder AddThrivestackIdentify<TContext>(this IServiceCollection services, Action<ThrivestackOptions> configure)
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var builder = AddCore<TContext>(services);
        services.AddOptions<ThrivestackOptions>(ThrivestackRegistration.OptionsName<TContext>()).Configure(configure);
        return builder;
    }

    /// <summary>
    /// Adds the dispatcher for <typeparamref name="TContext"/>'s outbox with options bound from configuration:
    /// pass a section to bind it; pass the root to bind its <c>Thrivestack</c> section (for example <c>Thrivestack:ApiToken</c>).
    /// </summary>
    /// <typeparam name="TContext">The application's context.</typeparam>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">
    /// A section such as <c>Configuration.GetSection("Identify:Billing")</c>, bound as it is; or the configuration root,
    /// whose <c>Thrivestack</c> section is bound.
    /// </param>
    /// <returns>A builder to configure the options from services or to extend the dispatcher's HTTP client.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="configuration"/> is <see langword="null"/>.</exception>
    /// <exception cref="OptionsValidationException">
    /// Not thrown by this call: the host throws it when it starts and an option is invalid (the message names the option, its value and the fix).
    /// </exception>
    /// <exception cref="InvalidOperationException">
    /// Not thrown by this call: the host throws it when it starts and a configuration value cannot be converted to its option's
    /// type, or two dispatched contexts map the same outbox table on one database.
    /// </exception>
    public static ThrivestackIdentifyBuilder AddThrivestackIdentify<TContext>(this IServiceCollection services, IConfiguration configuration)
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = AddCore<TContext>(services);
        var section = configuration as IConfigurationSection ?? configuration.GetSection(ThrivestackOptions.SectionName);
        services.AddOptions<ThrivestackOptions>(ThrivestackRegistration.OptionsName<TContext>()).Bind(section);
        return builder;
    }

    private static ThrivestackIdentifyBuilder AddCore<TContext>(IServiceCollection services)
        where TContext : DbContext
    {
        var name = ThrivestackRegistration.OptionsName<TContext>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<OutboxSignal>();
        services.TryAddSingleton<ThrivestackMetrics>();
        services.TryAddSingleton<DispatcherStatus<TContext>>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ThrivestackOptions>, ThrivestackOptionsValidator>());
        ThrivestackStartupCheck.Register<TContext>(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, OutboxDispatcher<TContext>>());
        services.AddMetrics();
        if (!services.Any(d => d.ServiceType == typeof(DispatcherMarker<TContext>)))
        {
            services.AddSingleton<DispatcherMarker<TContext>>();
            services.AddOptions<ThrivestackOptions>(name).ValidateOnStart();

            // The library's HTTP is its own: whatever ConfigureHttpClientDefaults adds to every client (resilience
            // handlers, loggers, a timeout) is removed here; its Polly pipeline owns retries and timeouts.
            services.AddHttpClient(name)
                .ConfigurePrimaryHttpMessageHandler(CreatePrimaryHandler)
                .ConfigureAdditionalHttpMessageHandlers(static (handlers, _) => handlers.Clear())
                .RemoveAllLoggers()
                .ConfigureHttpClient(static client => client.Timeout = Timeout.InfiniteTimeSpan);
        }

        return new ThrivestackIdentifyBuilder(services, services.AddHttpClient(name), name);
    }

    // Redirects are never followed: the token must not reach another origin, and a 3xx is a wrong Endpoint.
    private static SocketsHttpHandler CreatePrimaryHandler() => new()
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        MaxResponseDrainSize = 0,
    };

    private sealed class DispatcherMarker<TContext>;
}
