using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Dispatch;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the identify outbox health check.</summary>
public static class ThrivestackHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check of <typeparamref name="TContext"/>'s identify outbox: Degraded when the oldest pending
    /// event is older than <paramref name="degradedAfter"/> or sending is paused for the token, Unhealthy when the
    /// outbox cannot be read.
    /// </summary>
    /// <typeparam name="TContext">The context whose outbox is checked.</typeparam>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="degradedAfter">The age of the oldest pending event that counts as Degraded. The default value is 5 minutes.</param>
    /// <param name="name">The check's name. The default value is <c>thrivestack-outbox</c>.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    public static IHealthChecksBuilder AddThrivestackOutbox<TContext>(this IHealthChecksBuilder builder, TimeSpan? degradedAfter = null, string name = "thrivestack-outbox")
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(builder);
        var threshold = degradedAfter ?? TimeSpan.FromMinutes(5);
        return builder.Add(new HealthCheckRegistration(
            name,
            services => new ThrivestackOutboxHealthCheck<TContext>(
                services.GetRequiredService<IServiceScopeFactory>(),
                services.GetService<DispatcherStatus<TContext>>() ?? new DispatcherStatus<TContext>(),
                services.GetService<TimeProvider>() ?? TimeProvider.System,
                threshold),
            HealthStatus.Unhealthy,
            ["thrivestack"]));
    }
}
