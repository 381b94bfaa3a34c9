using System.Diagnostics;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>Starts this bench again as a child process (another scenario step), with its standard streams piped.</summary>
internal static class ChildProcess
{
    public static Process Start(IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var executable = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(executable) == "dotnet")
        {
            start.ArgumentList.Add(typeof(ChildProcess).Assembly.Location);
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException("The child process did not start.");
    }

    /// <summary>Reads lines until one starts with <paramref name="prefix"/>, echoing the others.</summary>
    public static async Task<string> WaitForLineAsync(Process process, string prefix, TimeSpan timeout)
    {
        using var cancellation = new CancellationTokenSource(timeout);
        while (true)
        {
            var line = await process.StandardOutput.ReadLineAsync(cancellation.Token)
                ?? throw new InvalidOperationException($"The child process ended (exit code {(process.HasExited ? process.ExitCode : -1)}) before printing '{prefix}'.");
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line[prefix.Length..].Trim();
            }

            Console.WriteLine($"  [child {process.Id}] {line}");
        }
    }
}
