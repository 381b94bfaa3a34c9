// The Thrivestack.EfCore quickstart: an app that keeps its users in EF Core (SQLite) and sends ThriveStack
// identify calls without a single line of HTTP code. See Story.cs for what the app does.
//
//   dotnet run --project samples/Thrivestack.EfCore.Sample
//   dotnet run --project samples/Thrivestack.EfCore.Sample -- backfill   (identify users that existed before the library)
//
// Without THRIVESTACK_API_TOKEN it starts a local ThriveStack stand-in in this process and shows what arrived.
// With THRIVESTACK_API_TOKEN (and optionally THRIVESTACK_ENDPOINT) it sends to the real ThriveStack API.
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Sample;
using Thrivestack.EfCore.Sample.Model;
using Thrivestack.EfCore.Testing;

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args,
    ContentRootPath = AppContext.BaseDirectory, // finds appsettings.json whatever the working directory
});

// Where to send: the real API when a token is configured, else a stand-in on 127.0.0.1.
var apiToken = builder.Configuration["THRIVESTACK_API_TOKEN"];
var endpointSetting = builder.Configuration["THRIVESTACK_ENDPOINT"];
Uri? endpoint = null;
if (!string.IsNullOrWhiteSpace(endpointSetting) && !Uri.TryCreate(endpointSetting, UriKind.Absolute, out endpoint))
{
    Console.Error.WriteLine($"THRIVESTACK_ENDPOINT is not an absolute URL: '{endpointSetting}'.");
    return 2;
}

// The stand-in starts after builder.Build() (below): `dotnet ef` and WebApplicationFactory take the first host built in
// the process for the app's, and the stand-in is a host of its own. Options are read when the host starts, by then it runs.
var useStandIn = string.IsNullOrWhiteSpace(apiToken);
ThrivestackStandIn? standIn = null;

// 1. The app's context, with the interceptor that writes identify events into the outbox on SaveChanges.
builder.Services.AddDbContext<AppDbContext>(o => o
    .UseSqlite(SampleDatabase.ConnectionString)
    .AddThrivestackIdentifyInterceptor());

// 2. The hosted dispatcher that ships the outbox to ThriveStack.
builder.Services.AddThrivestackIdentify<AppDbContext>(o =>
{
    if (useStandIn)
    {
        var running = standIn ?? throw new InvalidOperationException("Start the stand-in before the host.");
        o.Endpoint = running.Endpoint;
        o.ApiToken = running.ApiToken;
    }
    else
    {
        o.ApiToken = apiToken;
        o.Endpoint = endpoint ?? o.Endpoint; // default: https://api.app.thrivestack.ai/api/identify
    }

    // Only for this demo: keep delivered rows for a while so the story can count them.
    // The default (zero) deletes a row as soon as ThriveStack accepted it.
    o.DeliveredRetention = TimeSpan.FromHours(1);
});

using var host = builder.Build();
await using var startedStandIn = useStandIn ? await ThrivestackStandIn.StartAsync() : null;
standIn = startedStandIn;

Console.WriteLine("Thrivestack.EfCore sample");
Console.WriteLine(!useStandIn
    ? $"  ThriveStack: {endpoint?.ToString() ?? "https://api.app.thrivestack.ai/api/identify"} (THRIVESTACK_API_TOKEN is set)"
    : $"  ThriveStack: a local stand-in at {standIn!.Endpoint} (set THRIVESTACK_API_TOKEN to use the real API)");
Console.WriteLine($"  Database:    {Path.GetRelativePath(Environment.CurrentDirectory, SampleDatabase.FilePath)} (recreated with EF Core migrations)");
Console.WriteLine();

try
{
    await SampleDatabase.RecreateAsync(host.Services);
    await host.StartAsync(); // starts the dispatcher; its options are validated here
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine($"The ThriveStack options are invalid: {e.Message}");
    return 2;
}

// Ctrl+C stops the host; the story stops with it.
var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
var exitCode = 0;
try
{
    if (args.Contains("backfill", StringComparer.OrdinalIgnoreCase))
    {
        await BackfillCommand.RunAsync(host.Services, standIn, stopping); // identify the users that existed before (issue 12)
    }
    else
    {
        await new Story(host.Services, standIn, stopping).RunAsync();
        await Report.PrintAsync(host.Services, standIn);
    }
}
catch (StoryFailedException e)
{
    Console.WriteLine();
    Console.Error.WriteLine($"FAILED: {e.Message}");
    exitCode = 1;
}
catch (OperationCanceledException) when (stopping.IsCancellationRequested)
{
    Console.WriteLine();
    Console.WriteLine("Interrupted.");
    exitCode = 130;
}
finally
{
    Console.WriteLine();
    Console.WriteLine("Stopping the host.");
    await host.StopAsync();
}

return exitCode;
