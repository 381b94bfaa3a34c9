using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the identify outbox health check.</summary>
public static class ThrivestackHealthChecksBuilderExtensions
{
    /// <summary>The name the check is registered under when none is given.</summary>
    private const string DefaultName = "thrivestack-outbox";

    /// <summary>
    /// Adds a health check of <typeparamref name="TContext"/>'s identify outbox (as <c>AddDbContextCheck</c> does for the
    /// context): Degraded when the oldest pending event is older than <paramref name="degradedAfter"/> or sending is
    /// paused (a refused token, a wrong endpoint), <paramref name="failureStatus"/> when the outbox cannot be read.
    /// </summary>
    /// <typeparam name="TContext">The context whose outbox is checked.</typeparam>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The check's name. The default value is <c>thrivestack-outbox</c>.</param>
    /// <param name="failureStatus">The status reported when the outbox cannot be read. The default value is <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by (for example <c>ready</c>). The default value is none.</param>
    /// <param name="degradedAfter">The age of the oldest pending event that counts as Degraded. The default value is 5 minutes.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="degradedAfter"/> is zero or negative.</exception>
    public static IHealthChecksBuilder AddThrivestackOutboxCheck<TContext>(
        this IHealthChecksBuilder builder,
        string? name = null,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null,
        TimeSpan? degradedAfter = null)
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(builder);
        var threshold = degradedAfter ?? TimeSpan.FromMinutes(5);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(threshold, TimeSpan.Zero, nameof(degradedAfter));
        return builder.Add(new HealthCheckRegistration(
            name ?? DefaultName,
            services => new ThrivestackOutboxHealthCheck<TContext>(
                services.GetRequiredService<IServiceScopeFactory>(),
                services.GetService<DispatcherStatus<TContext>>() ?? new DispatcherStatus<TContext>(),
                services.GetService<TimeProvider>() ?? TimeProvider.System,
                threshold),
            failureStatus,
            tags));
    }
}
