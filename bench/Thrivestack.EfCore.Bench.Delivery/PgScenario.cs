using System.Diagnostics;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// PostgreSQL drain with 1, 2, 4 dispatchers, each in its own OS process, as separate app instances run (the
/// FOR UPDATE SKIP LOCKED claim is what scales them). Every child first drains a warm-up database of its own
/// (JIT, EF caches, pools), then all start on the same N rows at one signal. This process runs the stand-in
/// and the PostgreSQL server runs beside it: on a 2-core machine everything shares the same two cores, so the
/// machine's CPU use is printed with each run.
/// </summary>
internal static class PgScenario
{
    public const string ChildCommand = "pg-drain";
    private const int WarmupRows = 5000;

    public static async Task<int> RunAsync(BenchOptions options)
    {
        var rows = options.Int("rows", 100_000);
        var batch = options.Int("batch", 100);
        var counts = options.Ints("dispatchers", "1,2,4");
        Console.WriteLine($"pg: drain {rows:N0} rows with {string.Join('/', counts)} dispatcher processes, batch {batch}");
        Console.WriteLine($"machine: {Machine.Describe()}");
        await using var cluster = await PgCluster.StartAsync();
        await using var standIn = await ThrivestackStandIn.StartAsync(new ThrivestackStandInOptions { RecordEvents = false });
        var results = new List<(int Dispatchers, double EventsPerSecond)>();
        foreach (var count in counts)
        {
            var main = await CreateFilledAsync(cluster, $"bench_main_{count}", rows);
            var warm = new List<string>();
            for (var i = 0; i < count; i++)
            {
                warm.Add(await CreateFilledAsync(cluster, $"bench_warm_{i}", WarmupRows));
            }

            var children = new List<Process>();
            try
            {
                for (var i = 0; i < count; i++)
                {
                    children.Add(ChildProcess.Start([ChildCommand, main, warm[i], standIn.Endpoint.ToString(), standIn.ApiToken, batch.ToString(CultureInfo.InvariantCulture)]));
                }

                foreach (var child in children)
                {
                    await ChildProcess.WaitForLineAsync(child, "WARM", TimeSpan.FromMinutes(2));
                }

                standIn.Reset();
                var serverStart = cluster.ServerCpuSeconds();
                var cpu = CpuSnapshot.Take();
                var clock = Stopwatch.StartNew();
                foreach (var child in children)
                {
                    await child.StandardInput.WriteLineAsync("go");
                    await child.StandardInput.FlushAsync();
                }

                await standIn.WaitForEventsAsync(rows, TimeSpan.FromMinutes(5));
                while (await PendingAsync(main) > 0)
                {
                    await Task.Delay(2);
                }

                clock.Stop();
                var end = CpuSnapshot.Take();
                var server = cluster.ServerCpuSeconds() - serverStart;
                var childSeconds = 0.0;
                foreach (var child in children)
                {
                    await child.StandardInput.WriteLineAsync("stop");
                    await child.StandardInput.FlushAsync();
                    childSeconds += double.Parse(await ChildProcess.WaitForLineAsync(child, "CPU", TimeSpan.FromMinutes(1)), CultureInfo.InvariantCulture);
                    await child.WaitForExitAsync();
                }

                var (machine, machineSeconds, own) = CpuSnapshot.Between(cpu, end);
                var perSecond = rows / clock.Elapsed.TotalSeconds;
                results.Add((count, perSecond));
                Console.WriteLine(
                    $"{count} dispatcher(s): {perSecond,9:N0} events/s ({clock.Elapsed.TotalSeconds:0.00} s), accepted {standIn.AcceptedEventCount:N0}; "
                    + $"machine CPU {machine:0}% of {Environment.ProcessorCount} cores ({machineSeconds:0.0} core-s): dispatchers {childSeconds:0.0} core-s, "
                    + $"stand-in process {own:0.0} core-s, PostgreSQL {(server is { } pg ? pg.ToString("0.0", CultureInfo.InvariantCulture) : "n/a")} core-s, "
                    + $"other processes {machineSeconds - childSeconds - own - (server ?? 0):0.0} core-s");
            }
            finally
            {
                foreach (var child in children)
                {
                    if (!child.HasExited)
                    {
                        child.Kill();
                    }

                    child.Dispose();
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| dispatchers | events/s | vs 1 dispatcher |");
        Console.WriteLine("| --- | --- | --- |");
        var one = results.FirstOrDefault(r => r.Dispatchers == 1).EventsPerSecond;
        foreach (var (dispatchers, perSecond) in results)
        {
            Console.WriteLine($"| {dispatchers} | {perSecond:N0} | {(one > 0 ? perSecond / one : double.NaN):0.00}x |");
        }

        return 0;
    }

    /// <summary>A new database with the model's schema and N pending rows: one captured by the interceptor, the rest copies of it.</summary>
    private static async Task<string> CreateFilledAsync(PgCluster cluster, string name, int rows)
    {
        var connectionString = await cluster.CreateDatabaseAsync(name);
        var options = new DbContextOptionsBuilder<BenchDbContext>().UseNpgsql(connectionString).AddThrivestackIdentifyInterceptor().Options;
        await using (var context = new BenchDbContext((DbContextOptions<BenchDbContext>)options))
        {
            await context.Database.EnsureCreatedAsync();
            context.Users.Add(BenchUsers.New(0));
            await context.SaveChangesAsync();
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var fill = new NpgsqlCommand(
            """
            INSERT INTO thrivestack_outbox (user_id, group_id, kind, payload, payload_bytes, created_at, state, attempts,
              next_attempt_at, lease_id, lease_owner, lease_expires_at, delivered_at, dead_lettered_at, last_error)
            SELECT g.u, t.group_id, t.kind, replace(t.payload, t.user_id, g.u), t.payload_bytes, t.created_at, t.state, t.attempts,
              t.next_attempt_at, t.lease_id, t.lease_owner, t.lease_expires_at, t.delivered_at, t.dead_lettered_at, t.last_error
            FROM thrivestack_outbox AS t
            CROSS JOIN (SELECT n, gen_random_uuid()::text AS u FROM generate_series(1, @copies) AS n) AS g
            WHERE t.id = (SELECT min(id) FROM thrivestack_outbox)
            ORDER BY g.n;
            """,
            connection);
        fill.Parameters.AddWithValue("copies", rows - 1);
        await fill.ExecuteNonQueryAsync();
        await using var template = new NpgsqlCommand("CREATE TABLE warm_template AS SELECT * FROM thrivestack_outbox", connection);
        await template.ExecuteNonQueryAsync();
        await using var vacuum = new NpgsqlCommand("VACUUM ANALYZE thrivestack_outbox", connection);
        await vacuum.ExecuteNonQueryAsync();
        return connectionString;
    }

    private static async Task<long> PendingAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM thrivestack_outbox WHERE state = 0", connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>One dispatcher process: warm up on its own database, then drain the shared one from "go" to "stop".</summary>
    public static async Task<int> ChildAsync(string[] args)
    {
        var (main, warm, endpoint, token, batch) = (args[0], args[1], new Uri(args[2]), args[3], int.Parse(args[4], CultureInfo.InvariantCulture));
        // Warm-up until the JIT has settled (tiered compilation needs 10-15 s of steady work here): drain the warm-up
        // database, refill it from its template, again; at least 15 s, then until a round compiles almost nothing.
        var clock = Stopwatch.StartNew();
        var rounds = 0;
        while (true)
        {
            var before = System.Runtime.JitInfo.GetCompiledMethodCount();
            using (var warmHost = DispatcherHost.Build(o => o.UseNpgsql(warm), endpoint, token, batch))
            {
                await warmHost.StartAsync();
                while (await PendingAsync(warm) > 0)
                {
                    await Task.Delay(20);
                }

                await warmHost.StopAsync();
            }

            rounds++;
            var compiled = System.Runtime.JitInfo.GetCompiledMethodCount() - before;
            if ((clock.Elapsed.TotalSeconds >= 15 && compiled < 50) || clock.Elapsed.TotalSeconds >= 60)
            {
                Console.WriteLine($"warm-up: {rounds} rounds, {clock.Elapsed.TotalSeconds:0} s, {compiled} methods compiled in the last");
                break;
            }

            await using var connection = new NpgsqlConnection(warm);
            await connection.OpenAsync();
            await using var refill = new NpgsqlCommand(
                "INSERT INTO thrivestack_outbox (user_id, group_id, kind, payload, payload_bytes, created_at, state, attempts, next_attempt_at) "
                + "SELECT user_id, group_id, kind, payload, payload_bytes, created_at, state, attempts, next_attempt_at FROM warm_template",
                connection);
            await refill.ExecuteNonQueryAsync();
        }

        Console.WriteLine("WARM");
        if (await Console.In.ReadLineAsync() != "go")
        {
            return 1;
        }

        var start = Process.GetCurrentProcess().TotalProcessorTime;
        using var host = DispatcherHost.Build(o => o.UseNpgsql(main), endpoint, token, batch);
        await host.StartAsync();
        await Console.In.ReadLineAsync();
        var used = Process.GetCurrentProcess().TotalProcessorTime - start;
        await host.StopAsync();
        Console.WriteLine($"CPU {used.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture)}");
        return 0;
    }
}
