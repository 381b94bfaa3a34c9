using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Hosting;

/// <summary>
/// Healthy while events flow; Degraded when the oldest pending event is older than the threshold or sending is
/// paused for a refused token; the registration's failure status when the outbox cannot be read. Healthy on a provider
/// without SQL (EF's InMemory, as in tests), where nothing is captured.
/// </summary>
internal sealed class ThrivestackOutboxHealthCheck<TContext>(
    IServiceScopeFactory scopes,
    DispatcherStatus<TContext> status,
    TimeProvider time,
    TimeSpan degradedAfter) : IHealthCheck
    where TContext : DbContext
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        OutboxStatistics statistics;
        OutboxTable? table = null;
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<TContext>();
            if (!db.Database.IsRelational())
            {
                // EF's InMemory provider, as in an app's tests: nothing is captured, so nothing can be late.
                return HealthCheckResult.Healthy($"{ProviderFacts.Name(db)} does not run SQL: no identify events are captured or sent.");
            }

            table = ModelMap.For(db.Model).Outbox;
            statistics = await new OutboxStore(db).StatisticsAsync(time.GetUtcNow().UtcDateTime, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var missing = ex is DbException db && table is not null && MissingOutboxTable.Is(table, db);
            return new HealthCheckResult(context.Registration.FailureStatus, missing ? MissingOutboxTable.Describe(table!) : "The identify outbox cannot be read.", ex);
        }

        var data = new Dictionary<string, object>
        {
            ["pending"] = statistics.Pending,
            ["oldest_pending_age_seconds"] = statistics.OldestPendingAge.TotalSeconds,
        };
        if (status.AuthPausedSince is { } since)
        {
            data["auth_paused_since"] = since;
            return HealthCheckResult.Degraded(status.PauseMessage ?? "Sending is paused: ThriveStack refused the API token.", data: data);
        }

        return statistics.OldestPendingAge > degradedAfter
            ? HealthCheckResult.Degraded($"The oldest pending identify event is {statistics.OldestPendingAge.TotalSeconds:N0} s old (threshold {degradedAfter.TotalSeconds:N0} s).", data: data)
            : HealthCheckResult.Healthy($"{statistics.Pending} identify events pending.", data);
    }
}
