using System.Diagnostics;
using System.Globalization;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>A dispatcher in its own OS process (tests/Thrivestack.EfCore.DrainProcess), to stop or SIGKILL.</summary>
public sealed class DispatcherProcess : IDisposable
{
    private readonly Process process;
    private readonly TaskCompletionSource ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> output = new();

    private DispatcherProcess(Process process)
    {
        this.process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            output.Enqueue(e.Data);
            if (e.Data == "ready")
            {
                ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                output.Enqueue(e.Data);
            }
        };
    }

    public int Id => process.Id;

    public string Output => string.Join(Environment.NewLine, output);

    public static async Task<DispatcherProcess> StartAsync(string connectionString, Uri endpoint, string token, TimeSpan lease, int maxEventsPerBatch = 100)
    {
        var dll = Locate();
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            dll, connectionString, endpoint.ToString(), token,
            lease.TotalSeconds.ToString(CultureInfo.InvariantCulture), maxEventsPerBatch.ToString(CultureInfo.InvariantCulture),
        })
        {
            start.ArgumentList.Add(arg);
        }

        var drain = new DispatcherProcess(Process.Start(start)!);
        drain.process.BeginOutputReadLine();
        drain.process.BeginErrorReadLine();
        var exited = drain.process.WaitForExitAsync();
        var first = await Task.WhenAny(drain.ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
        if (first != drain.ready.Task)
        {
            drain.Dispose();
            throw new InvalidOperationException($"The dispatcher process did not start: {drain.Output}");
        }

        return drain;
    }

    // The program runs from its own build output (its dependencies differ from the test's); the project
    // reference only makes sure it is built first, in the same configuration.
    private static string Locate()
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = testOutput.Parent!.Name;
        for (var dir = testOutput; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Thrivestack.EfCore.DrainProcess", "bin", configuration, testOutput.Name, "Thrivestack.EfCore.DrainProcess.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("Thrivestack.EfCore.DrainProcess.dll was not built; build the solution first.");
    }

    /// <summary>SIGKILL: no shutdown, no lease release, an in-flight request dies with the process.</summary>
    public async Task KillAsync()
    {
        process.Kill();
        await process.WaitForExitAsync();
    }

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }
}
