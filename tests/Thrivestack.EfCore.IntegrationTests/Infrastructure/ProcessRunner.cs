using System.ComponentModel;
using System.Diagnostics;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal static class ProcessRunner
{
    public static async Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout)
    {
        var commandLine = string.Join(' ', arguments.Prepend(fileName));
        var startInfo = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return new ProcessResult(commandLine, -1, string.Empty, e.Message);
        }

        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancellation = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return new ProcessResult(commandLine, -1, await ReadAsync(stdout), $"timed out after {timeout}. {await ReadAsync(stderr)}");
        }

        return new ProcessResult(commandLine, process.ExitCode, await ReadAsync(stdout), await ReadAsync(stderr));
    }

    // A daemon that inherited our pipes would keep them open forever; don't wait for it.
    private static async Task<string> ReadAsync(Task<string> output)
    {
        try
        {
            return await output.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
            return "(output not closed)";
        }
    }
}
