using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Hosting;

/// <summary>
/// Checks the wiring of every dispatched context before the host starts its services: the interceptor is on the
/// context, the outbox is mapped and exists, and no two contexts share one outbox table. Only the shared table stops
/// the start; an unreachable database never does (the check gives up after a few seconds).
/// </summary>
internal sealed class ThrivestackStartupCheck(
    IEnumerable<DispatchedContext> contexts,
    IServiceScopeFactory scopes,
    IOptionsMonitor<ThrivestackOptions> options,
    ILogger<ThrivestackStartupCheck> logger) : IHostedLifecycleService
{
    internal static readonly TimeSpan DatabaseTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Registers the check for <typeparamref name="TContext"/>; called by <c>AddThrivestackIdentify</c>, idempotent.</summary>
    public static void Register<TContext>(IServiceCollection services)
        where TContext : DbContext
    {
        if (!services.Any(d => d.ServiceType == typeof(DispatchedContext) && d.ImplementationInstance is DispatchedContext { ContextType: var t } && t == typeof(TContext)))
        {
            services.AddSingleton(new DispatchedContext(typeof(TContext), ThrivestackRegistration.OptionsName<TContext>()));
        }

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ThrivestackStartupCheck>());
    }

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var scopeList = new List<AsyncServiceScope>();
        try
        {
            var checkedContexts = new List<(DispatchedContext Registration, DbContext Context, OutboxTable? Table)>();
            foreach (var registration in contexts.DistinctBy(c => c.ContextType))
            {
                var scope = scopes.CreateAsyncScope();
                scopeList.Add(scope);
                if (scope.ServiceProvider.GetService(registration.ContextType) is not DbContext context)
                {
                    Log.StartupContextNotRegistered(logger, registration.ContextType.Name);
                    continue;
                }

                var settings = options.Get(registration.OptionsName);
                CheckWiring(registration, context, settings);
                checkedContexts.Add((registration, context, ModelMap.For(context.Model).Outbox));
            }

            RefuseSharedTables(checkedContexts);
            foreach (var (registration, context, table) in checkedContexts)
            {
                if (table is not null)
                {
                    await CheckTableAsync(registration, context, table, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            foreach (var scope in scopeList)
            {
                await scope.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void CheckWiring(DispatchedContext registration, DbContext context, ThrivestackOptions settings)
    {
        var name = registration.ContextType.Name;
        var contextOptions = context.GetService<IDbContextOptions>();
        if (contextOptions.FindExtension<ThrivestackIdentifyOptionsExtension>() is null && !settings.CaptureRunsElsewhere)
        {
            Log.StartupInterceptorMissing(logger, name);
        }

        if (!settings.SendingEnabled)
        {
            Log.StartupSendingDisabled(logger, name);
        }

        if (!ProviderFacts.IsRelational(contextOptions))
        {
            Log.StartupProviderWithoutSql(logger, name, ProviderFacts.Name(context));
        }
        else if (ModelMap.For(context.Model).Outbox is null)
        {
            Log.StartupOutboxNotMapped(logger, name);
        }
    }

    private static void RefuseSharedTables(List<(DispatchedContext Registration, DbContext Context, OutboxTable? Table)> checkedContexts)
    {
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (registration, context, table) in checkedContexts)
        {
            if (table is null || DatabaseIdentity(context) is not { } database)
            {
                continue;
            }

            var qualified = table.Schema is null ? table.TableName : $"{table.Schema}.{table.TableName}";
            var key = $"{context.Database.ProviderName}|{database}|{qualified}";
            if (seen.TryGetValue(key, out var other))
            {
                throw new InvalidOperationException(
                    $"{other} and {registration.ContextType.Name} both map the identify outbox table '{qualified}' on the same database, and both are dispatched here: "
                    + "each dispatcher would ship the other's events with its own settings. Give each context its own outbox table, for example "
                    + $"modelBuilder.AddThrivestackOutbox(\"{table.TableName}_billing\") in the OnModelCreating of {registration.ContextType.Name}, then add a migration "
                    + "(or call Database.EnsureThrivestackOutboxCreated()).");
            }

            seen[key] = registration.ContextType.Name;
        }
    }

    /// <summary>Where the context's connection points, read from the connection without opening it; null when unknown or private to one connection.</summary>
    private static string? DatabaseIdentity(DbContext context)
    {
        var connection = context.Database.GetDbConnection();
        var source = connection.DataSource;
        if (string.IsNullOrEmpty(source) || source.Contains(":memory:", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return $"{source}|{connection.Database}";
    }

    private async Task CheckTableAsync(DispatchedContext registration, DbContext context, OutboxTable table, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(DatabaseTimeout);
        try
        {
            if (!await OutboxTableProbe.ExistsAsync(context, table, timeout.Token).ConfigureAwait(false))
            {
                Log.StartupOutboxTableMissing(logger, registration.ContextType.Name, table.TableName);
            }
            else if (BackfillCheckpointConfiguration.TableIn(context.Model) is { } coordination
                && !await OutboxTableProbe.ExistsAsync(context, coordination.Name, coordination.Schema, timeout.Token).ConfigureAwait(false))
            {
                Log.StartupCoordinationTableMissing(logger, registration.ContextType.Name, coordination.Name);
            }
        }
        catch (Exception exception) when (exception is DbException or TimeoutException or InvalidOperationException
            || (exception is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Log.StartupDatabaseUnreachable(logger, exception, registration.ContextType.Name);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // A check must never be the reason an application does not start; this one is a bug to report.
            Log.StartupCheckFailed(logger, exception, registration.ContextType.Name);
        }
    }
}
