using System.Diagnostics;
using System.Globalization;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>
/// Stops servers left behind by test processes that were killed before they could dispose the fixture
/// (pg_ctl daemonizes the server, so it outlives its parent).
/// </summary>
internal static class OrphanReaper
{
    public static async Task ReapAsync(PgTools tools)
    {
        string[] roots;
        try
        {
            roots = Directory.GetDirectories(Path.GetTempPath(), LocalCluster.DirectoryPrefix + "*");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (var root in roots.Where(OwnerIsGone))
        {
            await ClusterTeardown.StopAndDeleteAsync(tools, root);
        }
    }

    private static bool OwnerIsGone(string root)
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(root, LocalCluster.OwnerFile));
            if (!int.TryParse(text, CultureInfo.InvariantCulture, out var pid))
            {
                return false;
            }

            using var owner = Process.GetProcessById(pid);
            return owner.HasExited;
        }
        catch (ArgumentException)
        {
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            // Unreadable (another user's) or being created right now: not ours to judge.
            return false;
        }
    }
}
