using System.Diagnostics;
using System.Globalization;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>What the machine is and how busy it was: cores, memory, load, CPU time from /proc.</summary>
internal static class Machine
{
    public static string Describe()
    {
        var memory = ReadKb("/proc/meminfo", "MemTotal:");
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";
        return $"{Environment.ProcessorCount} cores, {memory / 1024.0 / 1024.0:0.0} GiB RAM, {Environment.OSVersion}, .NET {Environment.Version}, load average {load}";
    }

    /// <summary>Working-set figures of this process from /proc/self/status, in bytes.</summary>
    public static (long Rss, long PeakRss) WorkingSet() =>
        (ReadKb("/proc/self/status", "VmRSS:") * 1024, ReadKb("/proc/self/status", "VmHWM:") * 1024);

    /// <summary>The resident set split as the kernel sees it: anonymous (heaps), file-backed (code, mapped files), shared memory.</summary>
    public static string ResidentParts() =>
        $"anon {Mb(ReadKb("/proc/self/status", "RssAnon:") * 1024)}, file {Mb(ReadKb("/proc/self/status", "RssFile:") * 1024)}, shmem {Mb(ReadKb("/proc/self/status", "RssShmem:") * 1024)}";

    /// <summary>
    /// The resident anonymous mappings of this process, largest first (/proc/self/smaps): glibc's per-thread malloc arenas
    /// are the 64 MB-aligned ones, the GC's heap and the runtime's the rest. For finding where native memory goes.
    /// </summary>
    public static string AnonymousMappings(int top)
    {
        if (!File.Exists("/proc/self/smaps"))
        {
            return "n/a";
        }

        var mappings = new List<(ulong Start, long SizeKb, long RssKb, string Name)>();
        (ulong Start, long SizeKb, long RssKb, string Name)? current = null;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 5 && fields[0].Contains('-', StringComparison.Ordinal) && !line.EndsWith(" kB", StringComparison.Ordinal))
            {
                if (current is { } done)
                {
                    mappings.Add(done);
                }

                var range = fields[0].Split('-');
                current = (ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture), 0, 0, fields.Length > 5 ? fields[5] : "");
            }
            else if (current is { } open && fields.Length >= 2)
            {
                if (fields[0] == "Size:")
                {
                    current = open with { SizeKb = long.Parse(fields[1], CultureInfo.InvariantCulture) };
                }
                else if (fields[0] == "Rss:")
                {
                    current = open with { RssKb = long.Parse(fields[1], CultureInfo.InvariantCulture) };
                }
            }
        }

        if (current is { } last)
        {
            mappings.Add(last);
        }

        var anonymous = mappings.Where(m => m.Name is "" or "[heap]" or "[stack]").ToList();
        const ulong ArenaAlignment = 64UL * 1024 * 1024;
        var arenas = anonymous.Where(m => m.Start % ArenaAlignment == 0 && m.Name == "" && m.SizeKb <= 65536).ToList();
        var threads = ReadKb("/proc/self/status", "Threads:");
        return $"threads {threads}; {arenas.Count} 64 MB-aligned mappings (malloc arenas) holding {Mb(arenas.Sum(a => a.RssKb) * 1024)}; [heap] {Mb(anonymous.Where(m => m.Name == "[heap]").Sum(m => m.RssKb) * 1024)}; largest: "
            + string.Join(", ", anonymous.OrderByDescending(m => m.RssKb).Take(top).Select(m => $"{m.RssKb / 1024.0:0.0}/{m.SizeKb / 1024.0:0.0} MB{(m.Start % ArenaAlignment == 0 ? " (aligned)" : "")}"));
    }

    public static string Mb(long bytes) => (bytes / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " MB";

    private static long ReadKb(string file, string key)
    {
        if (!File.Exists(file))
        {
            return 0;
        }

        foreach (var line in File.ReadLines(file))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}

/// <summary>Whole-machine CPU (from /proc/stat) and this process's CPU time between two points.</summary>
internal readonly record struct CpuSnapshot(long Busy, long Total, TimeSpan Process, long Timestamp, long JitMethods, TimeSpan JitTime, long Allocated, long Written)
{
    /// <summary>Bytes this process has passed to write() and pwrite() (<c>wchar</c> in /proc/self/io), database files included.</summary>
    private static long WrittenBytes()
    {
        if (!File.Exists("/proc/self/io"))
        {
            return 0;
        }

        var line = File.ReadLines("/proc/self/io").FirstOrDefault(l => l.StartsWith("wchar:", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line["wchar:".Length..].Trim(), CultureInfo.InvariantCulture);
    }

    public static CpuSnapshot Take()
    {
        long busy = 0, total = 0;
        if (File.Exists("/proc/stat"))
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();

            // user nice system idle iowait irq softirq steal (guest is already counted in user)
            total = fields.Take(8).Sum();
            busy = total - fields[3] - fields[4];
        }

        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return new CpuSnapshot(busy, total, self.TotalProcessorTime, Stopwatch.GetTimestamp(),
            System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime(), GC.GetTotalAllocatedBytes(), WrittenBytes());
    }

    /// <summary>Machine CPU use between the snapshots (100% = every core busy), and core-seconds of this process.</summary>
    public static (double MachineBusyPercent, double MachineCoreSeconds, double ProcessCoreSeconds) Between(CpuSnapshot start, CpuSnapshot end)
    {
        var ticks = end.Total - start.Total;
        var percent = ticks == 0 ? 0 : 100.0 * (end.Busy - start.Busy) / ticks;
        var coreSeconds = (end.Busy - start.Busy) / 100.0; // USER_HZ = 100 on Linux
        return (percent, coreSeconds, (end.Process - start.Process).TotalSeconds);
    }
}
