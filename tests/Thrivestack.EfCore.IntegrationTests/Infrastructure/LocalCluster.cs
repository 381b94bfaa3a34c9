using System.Diagnostics;
using System.Globalization;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>A throwaway PostgreSQL cluster in a temp folder, driven by initdb and pg_ctl.</summary>
internal sealed class LocalCluster : IAsyncDisposable
{
    public const string DirectoryPrefix = "thrivestack-pg-";
    public const string OwnerFile = "owner.pid";

    // Generous, for a busy 2-core CI machine.
    private static readonly TimeSpan ReadyDeadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(120);
    private const int PortAttempts = 5;

    private readonly PgTools tools;
    private readonly string root;
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly List<ProcessResult> toolRuns = [];
    private readonly ExitHook exitHook;
    private bool running;
    private int disposed;

    private LocalCluster(PgTools tools, string root)
    {
        this.tools = tools;
        this.root = root;
        exitHook = new ExitHook(() => DisposeAsync().AsTask().GetAwaiter().GetResult());
    }

    public int Port { get; private set; }

    public string AdminConnectionString => ConnectionStrings.Local(Port, "postgres");

    private string DataDirectory => Path.Combine(root, "data");

    private string LogFile => Path.Combine(root, "server.log");

    public static async Task<LocalCluster> StartNewAsync()
    {
        var tools = await PgTools.CreateAsync();
        await OrphanReaper.ReapAsync(tools);
        var cluster = new LocalCluster(tools, Directory.CreateTempSubdirectory(DirectoryPrefix).FullName);
        try
        {
            await cluster.CreateAndStartAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async Task StopAsync()
    {
        await gate.WaitAsync();
        try
        {
            if (!running)
            {
                return;
            }

            var result = await tools.RunAsync("pg_ctl", ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "60"], ToolTimeout);
            if (!result.Succeeded)
            {
                throw new InvalidOperationException($"Could not stop PostgreSQL.{Environment.NewLine}{result.Describe()}");
            }

            running = false;
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task StartAsync()
    {
        await gate.WaitAsync();
        try
        {
            if (running)
            {
                return;
            }

            var clock = Stopwatch.StartNew();
            if (!(await PgCtlStartAsync()).Succeeded)
            {
                throw Failure($"pg_ctl start failed on port {Port}");
            }

            running = true;
            await ReadinessProbe.WaitAsync(AdminConnectionString, ReadyDeadline - clock.Elapsed, Diagnostics);
        }
        finally
        {
            gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1)
        {
            return;
        }

        exitHook.Dispose();
        await ClusterTeardown.StopAndDeleteAsync(tools, root);
    }

    private async Task CreateAndStartAsync()
    {
        await File.WriteAllTextAsync(Path.Combine(root, OwnerFile), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        if (await tools.HandOverAsync(root) is { } handOver)
        {
            Require(handOver, "could not hand the temp folder to the postgres user");
        }

        var initdb = await tools.RunAsync(
            "initdb", ["-D", DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"], ToolTimeout);
        Require(initdb, "initdb failed");
        await File.AppendAllTextAsync(Path.Combine(DataDirectory, "postgresql.conf"), Settings());

        var clock = Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            Port = FreeTcpPort.Find();
            var logLength = LogTail.Length(LogFile);
            if ((await PgCtlStartAsync()).Succeeded)
            {
                break;
            }

            // Another process may grab the port between our probe and the server's bind.
            var portTaken = LogTail.Read(LogFile, logLength).Contains("could not bind", StringComparison.OrdinalIgnoreCase);
            if (attempt == PortAttempts || !portTaken)
            {
                throw Failure($"pg_ctl start failed on port {Port}");
            }
        }

        running = true;
        await ReadinessProbe.WaitAsync(AdminConnectionString, ReadyDeadline - clock.Elapsed, Diagnostics);
    }

    private async Task<ProcessResult> PgCtlStartAsync()
    {
        string[] arguments = ["start", "-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", "-o", $"-p {Port}"];
        var result = await tools.RunAsync("pg_ctl", arguments, ToolTimeout);
        toolRuns.Add(result);
        return result;
    }

    private void Require(ProcessResult result, string what)
    {
        toolRuns.Add(result);
        if (!result.Succeeded)
        {
            throw Failure(what);
        }
    }

    private InvalidOperationException Failure(string what) =>
        new($"Could not start a throwaway PostgreSQL server: {what}.{Environment.NewLine}{Diagnostics()}");

    private string Diagnostics() =>
        string.Join(Environment.NewLine, toolRuns.Select(r => r.Describe())) +
        $"{Environment.NewLine}server log ({LogFile}):{Environment.NewLine}{LogTail.Read(LogFile)}{Environment.NewLine}" +
        $"Hint: set {PostgresServer.ExternalServerVariable} to an Npgsql connection string to use an existing server instead.";

    private string Settings() =>
        $"""

        listen_addresses = '{PostgresServer.LocalHost}'
        unix_socket_directories = '{root.Replace("'", "''")}'
        max_connections = 200
        # A throwaway test server: durability is not needed.
        fsync = off
        synchronous_commit = off
        full_page_writes = off

        """;
}
