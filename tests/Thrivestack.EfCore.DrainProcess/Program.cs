using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.DrainProcess;

// A separate OS process that runs one dispatcher against a PostgreSQL or SQLite outbox (a connection string that begins
// with "Data Source=" is SQLite's), for the scale-out and crash tests: arguments are the connection string, the endpoint,
// the token and the lease in seconds.
// It runs until it is stopped (SIGTERM) or killed (SIGKILL).
if (args.Length < 4)
{
    Console.Error.WriteLine("usage: Thrivestack.EfCore.DrainProcess <connection string> <endpoint> <token> <lease seconds> [max events per batch]");
    return 2;
}

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
builder.Services.AddDbContext<DrainContext>(o =>
{
    if (args[0].StartsWith("Data Source=", StringComparison.OrdinalIgnoreCase))
    {
        o.UseSqlite(args[0]);
    }
    else
    {
        o.UseNpgsql(args[0]);
    }
});
builder.Services.AddThrivestackIdentify<DrainContext>(o =>
{
    o.Endpoint = new Uri(args[1]);
    o.ApiToken = args[2];
    o.LeaseDuration = TimeSpan.FromSeconds(double.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture));
    o.RequestTimeout = o.LeaseDuration / 2;
    o.MaxRequestRetries = 0;
    o.PollInterval = TimeSpan.FromMilliseconds(200);
    o.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
    o.RetryMaxDelay = TimeSpan.FromSeconds(1);
    o.MaxAttempts = 100;

    // Delivered rows stay (throwaway test database), so tests can see which instance delivered what.
    o.DeliveredRetention = TimeSpan.FromHours(1);
    if (args.Length > 4)
    {
        o.MaxEventsPerBatch = int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture);
    }
});
using var host = builder.Build();
await host.StartAsync();
Console.WriteLine("ready");
await host.WaitForShutdownAsync();
return 0;
