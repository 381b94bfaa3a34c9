using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Thrivestack.EfCore.Bench;

/// <summary>
/// The PostgreSQL server of the pg and backfill scenarios and of the paired capture runner's pg mode: the one named
/// by THRIVESTACK_TEST_POSTGRES, or else a throwaway cluster (initdb and pg_ctl from PATH, run as the postgres OS user when we are root) in a temp folder, with the
/// integration tests' settings (fsync off: a benchmark database needs no durability), deleted afterwards.
/// </summary>
public sealed class PgCluster : IAsyncDisposable
{
    public const string ExternalServerVariable = "THRIVESTACK_TEST_POSTGRES";
    private const string ServiceUser = "postgres";

    private readonly string? root;
    private readonly bool asServiceUser;

    private PgCluster(string adminConnectionString, string? root, bool asServiceUser)
    {
        AdminConnectionString = adminConnectionString;
        this.root = root;
        this.asServiceUser = asServiceUser;
    }

    public string AdminConnectionString { get; }

    public static async Task<PgCluster> StartAsync()
    {
        var external = Environment.GetEnvironmentVariable(ExternalServerVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            var builder = new NpgsqlConnectionStringBuilder(external);
            builder.Database = string.IsNullOrEmpty(builder.Database) ? "postgres" : builder.Database;
            return new PgCluster(builder.ConnectionString, null, false);
        }

        var asServiceUser = Environment.UserName == "root";
        var root = Directory.CreateTempSubdirectory("thrivestack-bench-pg-").FullName;
        var cluster = new PgCluster("", root, asServiceUser);
        var data = Path.Combine(root, "data");
        if (asServiceUser)
        {
            await RunAsync("chown", ["-R", ServiceUser + ":", root]);
        }

        await cluster.ToolAsync("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"]);
        var port = FreePort();
        await File.AppendAllTextAsync(Path.Combine(data, "postgresql.conf"), $"""

            listen_addresses = '127.0.0.1'
            port = {port}
            unix_socket_directories = '{root}'
            max_connections = 200
            fsync = off
            synchronous_commit = off
            full_page_writes = off

            """);
        await cluster.ToolAsync("pg_ctl", ["start", "-D", data, "-l", Path.Combine(root, "server.log"), "-w", "-t", "60"]);
        var admin = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = "postgres", Database = "postgres" }.ConnectionString;
        return new PgCluster(admin, root, asServiceUser);
    }

    public async Task<string> CreateDatabaseAsync(string name)
    {
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }

        // DROP ... WITH (FORCE) ended any pooled connection to the old database of that name.
        NpgsqlConnection.ClearAllPools();
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name, MaxPoolSize = 50, CommandTimeout = 120 }.ConnectionString;
    }

    /// <summary>
    /// CPU seconds the local server used so far: the postmaster, its live children, and its children that ended
    /// (cutime/cstime). Null for an external server.
    /// </summary>
    public double? ServerCpuSeconds()
    {
        if (root is null || !File.Exists(Path.Combine(root, "data", "postmaster.pid")))
        {
            return null;
        }

        var postmaster = int.Parse(File.ReadLines(Path.Combine(root, "data", "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        long ticks = 0;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(directory, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                var parent = int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
                long Field(int number) => long.Parse(fields[number - 3], System.Globalization.CultureInfo.InvariantCulture);
                if (pid == postmaster)
                {
                    ticks += Field(14) + Field(15) + Field(16) + Field(17);
                }
                else if (parent == postmaster)
                {
                    ticks += Field(14) + Field(15);
                }
            }
            catch (IOException)
            {
                // The process ended meanwhile.
            }
        }

        return ticks / 100.0;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        if (root is null)
        {
            return;
        }

        try
        {
            await ToolAsync("pg_ctl", ["stop", "-D", Path.Combine(root, "data"), "-m", "immediate", "-w", "-t", "30"]);
        }
        catch (InvalidOperationException)
        {
        }

        Directory.Delete(root, recursive: true);
    }

    private Task ToolAsync(string tool, IReadOnlyList<string> arguments)
    {
        var path = Locate(tool);
        return asServiceUser ? RunAsync("runuser", ["-u", ServiceUser, "--", path, .. arguments]) : RunAsync(path, arguments);
    }

    private static string Locate(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Concat(Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")) : [])
            .Select(d => Path.Combine(d, tool))
            .FirstOrDefault(File.Exists)
        ?? throw new FileNotFoundException($"'{tool}' is not on PATH; add the PostgreSQL server binaries or set {ExternalServerVariable}.");

    private static async Task RunAsync(string file, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();

        // pg_ctl start leaves the server holding our pipes: wait for the tool, not for the pipes.
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        if (process.ExitCode != 0)
        {
            var stderr = error.IsCompleted ? await error : "";
            var stdout = output.IsCompleted ? await output : "";
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}): {stdout} {stderr}");
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}
