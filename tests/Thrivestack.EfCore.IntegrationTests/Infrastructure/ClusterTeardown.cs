using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal static class ClusterTeardown
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Stops the server in <paramref name="root"/> (if any) and deletes the folder. Best effort: never throws.</summary>
    public static async Task StopAndDeleteAsync(PgTools tools, string root)
    {
        var data = Path.Combine(root, "data");
        try
        {
            if (File.Exists(Path.Combine(data, "postmaster.pid")))
            {
                var stop = await tools.RunAsync("pg_ctl", ["stop", "-D", data, "-m", "immediate", "-w", "-t", "30"], StopTimeout);
                if (!stop.Succeeded)
                {
                    KillPostmaster(data);
                }
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            KillPostmaster(data);
        }

        for (var attempt = 1; attempt <= 3 && Directory.Exists(root); attempt++)
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt));
            }
        }
    }

    private static void KillPostmaster(string dataDirectory)
    {
        try
        {
            var firstLine = File.ReadLines(Path.Combine(dataDirectory, "postmaster.pid")).FirstOrDefault();
            if (int.TryParse(firstLine, CultureInfo.InvariantCulture, out var pid))
            {
                using var postmaster = Process.GetProcessById(pid);
                postmaster.Kill();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException
            or InvalidOperationException or Win32Exception)
        {
            // Already gone, or not ours to kill.
        }
    }
}
