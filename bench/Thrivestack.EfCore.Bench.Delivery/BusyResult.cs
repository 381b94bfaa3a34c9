using System.Globalization;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>One variant's run of the busy app (a child's RESULT line, with what the stand-in saw meanwhile), and the summary of all runs.</summary>
internal sealed record BusyResult(
    string Variant, int Round, long Saves, double Seconds, double P50, double P99, double Max, long Pending, double CpuSeconds, double MachinePercent,
    int Delivered, int Requests, double DrainSeconds, string Load, double StandInCpuSeconds, long JitMethods, double JitMs, long AllocatedPerSave, long WrittenPerSave)
{
    public double SavesPerSecond => Saves / Seconds;

    public static BusyResult Parse(string variant, int round, string line, int delivered, int requests, double drained, string load, double standInCpu)
    {
        var values = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        double D(string name) => double.Parse(values[name], CultureInfo.InvariantCulture);
        return new BusyResult(variant, round, (long)D("saves"), D("seconds"), D("p50"), D("p99"), D("max"), (long)D("pending"), D("cpu"), D("machine"),
            delivered, requests, drained, load, standInCpu, (long)D("jit"), D("jitms"), (long)D("alloc"), (long)D("written"));
    }

    // Program sets the invariant culture for the whole process.
    public string Describe() =>
        $"round {Round} {Variant}: {SavesPerSecond,7:0} saves/s ({Saves:N0} in {Seconds:0.0} s), save p50 {P50:0.000} ms, p99 {P99:0.000} ms, max {Max:0.0} ms; "
        + $"app process CPU {CpuSeconds * 1000 / Saves:0.000} ms/save, bench process (stand-in) {StandInCpuSeconds * 1000 / Saves:0.000} ms/save, machine {MachinePercent:0}% busy; load before {Load}; "
        + $"JIT during the run {JitMethods} methods, {JitMs:0} ms; {AllocatedPerSave:N0} B allocated and {WrittenPerSave:N0} B written (write/pwrite) per save"
        + (Variant == "A" ? "" : $"; pending at the end {Pending:N0}")
        + (Requests == 0 ? "" : $"; delivered {Delivered:N0} events in {Requests:N0} requests ({(double)Delivered / Requests:0.0} per request), drained {DrainSeconds:0.00} s after the last save");

    /// <summary>Medians over the rounds per variant, and each round's ratio against A of the same round.</summary>
    public static IEnumerable<string> Summary(IReadOnlyList<BusyResult> results, IReadOnlyList<string> variants)
    {
        var baseline = results.Where(r => r.Variant == "A").ToDictionary(r => r.Round);
        yield return "| variant | saves/s (median; rounds) | x of A (per round) | A's p50 / p50 | save p50 | save p99 | app CPU per save | delivered during the run | pending at the end | drained after |";
        yield return "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";
        var baselineP50 = Median(results.Where(r => r.Variant == "A").Select(r => r.P50));
        foreach (var variant in variants)
        {
            var runs = results.Where(r => r.Variant == variant).OrderBy(r => r.Round).ToList();
            var ratios = runs.Where(r => baseline.ContainsKey(r.Round)).Select(r => r.SavesPerSecond / baseline[r.Round].SavesPerSecond).ToList();
            var name = variant switch
            {
                "A" => "A: no library",
                "B" => "B: interceptor + dispatcher",
                "C" => "C: interceptor only",
                _ => variant,
            };
            var delivered = variant == "B"
                ? FormattableString.Invariant($"{Median(runs.Select(r => r.Delivered / r.Seconds)):N0} events/s, {Median(runs.Select(r => (double)r.Delivered / Math.Max(1, r.Requests))):0.0} per request")
                : "-";
            yield return
                $"| {name} | {Median(runs.Select(r => r.SavesPerSecond)):N0} ({string.Join(", ", runs.Select(r => r.SavesPerSecond.ToString("N0", CultureInfo.InvariantCulture)))}) "
                + $"| {(variant == "A" ? "1.00" : $"{Median(ratios):0.00} ({string.Join(", ", ratios.Select(r => r.ToString("0.00", CultureInfo.InvariantCulture)))})")} "
                + $"| {baselineP50 / Median(runs.Select(r => r.P50)):0.00} | {Median(runs.Select(r => r.P50)):0.000} ms | {Median(runs.Select(r => r.P99)):0.000} ms | {Median(runs.Select(r => r.CpuSeconds * 1000 / r.Saves)):0.000} ms "
                + $"| {delivered} | {(variant == "A" ? "-" : Median(runs.Select(r => (double)r.Pending)).ToString("N0", CultureInfo.InvariantCulture))} "
                + $"| {(variant == "B" ? $"{Median(runs.Select(r => r.DrainSeconds)):0.00} s" : "-")} |";
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
