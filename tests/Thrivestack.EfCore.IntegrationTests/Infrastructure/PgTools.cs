namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>Runs the PostgreSQL server tools, as the <c>postgres</c> OS user when we are root.</summary>
internal sealed class PgTools
{
    public const string ServiceUser = "postgres";

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(30);

    private readonly SwitchMode mode;

    private PgTools(SwitchMode mode) => this.mode = mode;

    private enum SwitchMode
    {
        None,
        RunUser,
        Su,
    }

    public static async Task<PgTools> CreateAsync()
    {
        if (!await IsRootAsync())
        {
            return new PgTools(SwitchMode.None);
        }

        var runUser = await ProcessRunner.RunAsync("runuser", ["-u", ServiceUser, "--", "true"], ProbeTimeout);
        if (runUser.Succeeded)
        {
            return new PgTools(SwitchMode.RunUser);
        }

        var su = await ProcessRunner.RunAsync("su", [ServiceUser, "-s", "/bin/sh", "-c", "true"], ProbeTimeout);
        if (su.Succeeded)
        {
            return new PgTools(SwitchMode.Su);
        }

        throw new InvalidOperationException(
            $"PostgreSQL refuses to run as root and neither runuser nor su could switch to the '{ServiceUser}' OS user " +
            $"(does it exist?).{Environment.NewLine}{runUser.Describe()}{Environment.NewLine}{su.Describe()}");
    }

    /// <summary>Gives the folder to the service user, when we switch to it.</summary>
    public async Task<ProcessResult?> HandOverAsync(string folder)
    {
        if (mode == SwitchMode.None)
        {
            return null;
        }

        MakeAncestorsTraversable(folder);
        return await ProcessRunner.RunAsync("chown", ["-R", ServiceUser + ":", folder], ProbeTimeout);
    }

    public Task<ProcessResult> RunAsync(string tool, IReadOnlyList<string> arguments, TimeSpan timeout)
    {
        var path = Locate(tool);
        return mode switch
        {
            SwitchMode.RunUser => ProcessRunner.RunAsync("runuser", ["-u", ServiceUser, "--", path, .. arguments], timeout),
            SwitchMode.Su => ProcessRunner.RunAsync("su", [ServiceUser, "-s", "/bin/sh", "-c", ShellCommand(path, arguments)], timeout),
            _ => ProcessRunner.RunAsync(path, arguments, timeout),
        };
    }

    // An absolute path, because su resets PATH.
    private static string Locate(string tool)
    {
        var directories = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator);
        foreach (var directory in directories.Where(d => d.Length > 0))
        {
            var candidate = Path.Combine(directory, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException(
            $"'{tool}' was not found on PATH. Add the PostgreSQL server binaries to PATH (on Debian/Ubuntu: " +
            $"/usr/lib/postgresql/<version>/bin) or set {PostgresServer.ExternalServerVariable} to use an existing server.");
    }

    private static async Task<bool> IsRootAsync()
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        if (Environment.UserName == "root")
        {
            return true;
        }

        var id = await ProcessRunner.RunAsync("id", ["-u"], ProbeTimeout);
        return id.Succeeded && id.StandardOutput.Trim() == "0";
    }

    // The service user must be able to reach the folder (e.g. when TMPDIR is under /root).
    private static void MakeAncestorsTraversable(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        for (var directory = new DirectoryInfo(path).Parent; directory is not null; directory = directory.Parent)
        {
            if (!directory.UnixFileMode.HasFlag(UnixFileMode.OtherExecute))
            {
                directory.UnixFileMode |= UnixFileMode.OtherExecute;
            }
        }
    }

    private static string ShellCommand(string path, IEnumerable<string> arguments) =>
        string.Join(' ', arguments.Prepend(path).Select(a => "'" + a.Replace("'", "'\\''") + "'"));
}
