using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>An application host as a user writes it: the context with the interceptor, and the dispatcher.</summary>
internal static class DispatcherHost
{
    /// <summary>Logs every SQL command with its duration (diagnosis: <c>--sql-log true</c>).</summary>
    public static bool LogSql { get; set; }

    public static IHost Build(Action<DbContextOptionsBuilder> database, Uri endpoint, string token, int maxEventsPerBatch, Action<ThrivestackOptions>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders().AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        if (LogSql)
        {
            builder.Logging.AddFilter("Microsoft.EntityFrameworkCore.Database.Command", LogLevel.Information);
        }

        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        var timing = Breakdown.Current;
        builder.Services.AddDbContext<BenchDbContext>(o =>
        {
            database(o.AddThrivestackIdentifyInterceptor());
            if (timing is { } breakdown)
            {
                o.AddInterceptors(breakdown);
            }
        });
        builder.Services.AddThrivestackIdentify<BenchDbContext>(o =>
        {
            o.Endpoint = endpoint;
            o.ApiToken = token;
            o.MaxEventsPerBatch = maxEventsPerBatch;
            configure?.Invoke(o);
        });
        return builder.Build();
    }
}
