using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Diagnostics;
using SQLitePCL;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// Where the busy app's time goes in SQLite (<c>busy --profile true</c>): every statement on the context's connections
/// by origin (the app's saves or the dispatcher) and kind, timed by <c>sqlite3_profile</c> (waits for the write lock
/// included), and every wait for the write lock of the app's connections, through a busy handler that sleeps as
/// <c>PRAGMA busy_timeout</c> does (same steps, same limit) but counts. The dispatcher sets its own busy_timeout after
/// it opens a connection, which replaces this handler there: its waits show in its statements' durations only.
/// </summary>
internal sealed class BusyProfile : DbConnectionInterceptor
{
    // SQLite's own busy_timeout steps (sqliteDefaultBusyCallback, with usleep), in ms.
    private static readonly int[] Steps = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

    private static readonly AsyncLocal<bool> InApp = new();

    private readonly ConcurrentDictionary<string, Tally> statements = new();
    private readonly int timeoutMs;
    private readonly delegate_profile profile;
    private readonly BusyCallback busy;
    private readonly IntPtr busyPointer;
    private long waits;
    private long waitSteps;
    private long sleptTicks;
    private long gaveUp;

    public BusyProfile(int busyTimeoutMs)
    {
        timeoutMs = busyTimeoutMs;
        profile = (_, statement, nanoseconds) => statements.GetOrAdd(Key(statement.utf8_to_string()), _ => new Tally()).Add(nanoseconds);
        busy = (_, count) => Wait(count);
        busyPointer = Marshal.GetFunctionPointerForDelegate(busy);
    }

    // SQLitePCLRaw 2.1 does not expose sqlite3_busy_handler: call the bundled library directly.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int BusyCallback(IntPtr argument, int count);

    /// <summary>Marks the calling flow (a writer loop) as the app's: its statements and waits are counted as the app's.</summary>
    public static void MarkApp() => InApp.Value = true;

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Hook(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Hook(connection);
        return Task.CompletedTask;
    }

    /// <summary>Forgets what was counted so far (the warm-up).</summary>
    public void Clear()
    {
        statements.Clear();
        Interlocked.Exchange(ref waits, 0);
        Interlocked.Exchange(ref waitSteps, 0);
        Interlocked.Exchange(ref sleptTicks, 0);
        Interlocked.Exchange(ref gaveUp, 0);
    }

    public IEnumerable<string> Report(TimeSpan wall, long saves)
    {
        foreach (var (key, tally) in statements.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            var ms = tally.Nanoseconds / 1e6;
            yield return FormattableString.Invariant(
                $"{key,-44} {tally.Count,8} ({tally.Count / wall.TotalSeconds,7:0.0}/s, {(double)tally.Count / saves,5:0.00} per save) x {ms / tally.Count,6:0.000} ms = {ms / 1000,6:0.00} s ({ms / wall.TotalMilliseconds * 100,4:0.0}% of wall), max {tally.MaxNanoseconds / 1e6,6:0.0} ms");
        }

        var slept = sleptTicks * 1000.0 / Stopwatch.Frequency;
        yield return FormattableString.Invariant(
            $"app write-lock waits (busy handler): {waits} waits ({(double)waits / saves * 100:0.00}% of saves), {waitSteps} sleeps, {slept / 1000:0.00} s slept ({slept / wall.TotalMilliseconds * 100:0.0}% of wall), {gaveUp} gave up");
    }

    private static string Key(string sql)
    {
        var origin = InApp.Value ? "app" : "dispatcher";
        var text = sql.TrimStart();
        var kind = text switch
        {
            _ when text.Contains("\"lease_owner\" =", StringComparison.Ordinal) => "claim (UPDATE .. RETURNING)",
            _ when text.StartsWith("INSERT INTO \"Users\"", StringComparison.Ordinal) => "INSERT user",
            _ when text.StartsWith("INSERT INTO " + SqliteBench.Outbox, StringComparison.Ordinal) => "INSERT outbox row",
            _ when text.StartsWith("PRAGMA", StringComparison.OrdinalIgnoreCase) => "PRAGMA",
            _ when text.StartsWith("BEGIN", StringComparison.OrdinalIgnoreCase) => "BEGIN",
            _ when text.StartsWith("COMMIT", StringComparison.OrdinalIgnoreCase) => "COMMIT",
            _ when text.StartsWith("DELETE", StringComparison.OrdinalIgnoreCase) => "acknowledge (DELETE)",
            _ when text.StartsWith("UPDATE", StringComparison.OrdinalIgnoreCase) => "other UPDATE",
            _ when text.StartsWith("SELECT COUNT(*)", StringComparison.OrdinalIgnoreCase) => "statistics (SELECT COUNT)",
            _ when text.StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) => "other SELECT",
            _ => "other: " + text[..Math.Min(text.Length, 30)],
        };
        return origin + " " + kind;
    }

    private void Hook(DbConnection connection)
    {
        if (connection is SqliteConnection { Handle: { } handle })
        {
            raw.sqlite3_profile(handle, profile, null);
            if (timeoutMs > 0)
            {
                _ = NativeMethods.sqlite3_busy_handler(handle.DangerousGetHandle(), busyPointer, IntPtr.Zero);
            }
        }
    }

    private int Wait(int count)
    {
        var prior = Steps.Take(Math.Min(count, Steps.Length)).Sum() + (Math.Max(0, count - Steps.Length) * Steps[^1]);
        var delay = Math.Min(count < Steps.Length ? Steps[count] : Steps[^1], timeoutMs - prior);
        if (delay <= 0)
        {
            Interlocked.Increment(ref gaveUp);
            return 0;
        }

        if (count == 0)
        {
            Interlocked.Increment(ref waits);
        }

        Interlocked.Increment(ref waitSteps);
        var start = Stopwatch.GetTimestamp();
        Thread.Sleep(delay);
        Interlocked.Add(ref sleptTicks, Stopwatch.GetTimestamp() - start);
        return 1;
    }

    private static class NativeMethods
    {
        [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory)]
#pragma warning disable SYSLIB1054 // a bench: no source-generated marshalling needed for one call
        public static extern int sqlite3_busy_handler(IntPtr db, IntPtr callback, IntPtr argument);
#pragma warning restore SYSLIB1054
    }

    private sealed class Tally
    {
        private long count;
        private long nanoseconds;
        private long max;

        public long Count => Interlocked.Read(ref count);

        public long Nanoseconds => Interlocked.Read(ref nanoseconds);

        public long MaxNanoseconds => Interlocked.Read(ref max);

        public void Add(long ns)
        {
            Interlocked.Increment(ref count);
            Interlocked.Add(ref nanoseconds, ns);
            long seen;
            while (ns > (seen = Interlocked.Read(ref max)) && Interlocked.CompareExchange(ref max, ns, seen) != seen)
            {
            }
        }
    }
}
