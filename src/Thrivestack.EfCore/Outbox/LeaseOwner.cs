using System.Diagnostics;
using System.Globalization;

namespace Thrivestack.EfCore.Outbox;

/// <summary>Reads the <c>machine:process:unique</c> owner names that <see cref="OutboxStore.NewOwner"/> writes.</summary>
internal static class LeaseOwner
{
    /// <summary>
    /// Whether <paramref name="owner"/> is a process of this machine that no longer runs. A process id reused since by
    /// another process reads as alive: the lease is then waited out, never taken from a live holder.
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
    }
}
