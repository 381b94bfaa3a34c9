using System.Diagnostics;
using System.Globalization;

namespace Thrivestack.EfCore.Outbox;

/// <summary>Reads the <c>machine:process:unique</c> owner names that <see cref="OutboxStore.NewOwner"/> writes.</summary>
internal static class LeaseOwner
{
    /// <summary>
    /// Whether <paramref name="owner"/> looks like a process of this machine that no longer runs. A process id reused since
    /// by another process reads as alive. A process id can also look gone while its process runs (another PID namespace with
    /// the same host name, a /proc that hides other users' processes), so a take-over also needs the holder's renewals to
    /// have stopped (<see cref="DispatcherLeaseSql.TakeOver"/>).
    /// </summary>
    public static bool IsGone(string owner)
    {
        var parts = owner.Split(':');
        if (parts.Length < 3
            || !string.Equals(string.Join(':', parts[..^2]), Environment.MachineName, StringComparison.Ordinal)
            || !int.TryParse(parts[^2], NumberStyles.None, CultureInfo.InvariantCulture, out var processId))
        {
            return false;
        }

        if (processId == Environment.ProcessId)
        {
            return false;
        }

        try
        {
            using var process = Process.GetProcessById(processId);
            return process.HasExited;
        }
        catch (ArgumentException)
        {
            // No process with that id runs.
            return true;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Not allowed to look (another user's process on Windows): alive, as far as anyone can tell.
            return false;
        }
    }
}
