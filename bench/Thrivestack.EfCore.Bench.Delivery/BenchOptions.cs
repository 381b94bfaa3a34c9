using System.Globalization;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary><c>--name value</c> pairs from the command line.</summary>
internal sealed class BenchOptions(Dictionary<string, string> values)
{
    public static BenchOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException($"Expected --name value, got '{args[i]}'.");
            }

            values[args[i][2..]] = args[i + 1];
        }

        return new BenchOptions(values);
    }

    public string Get(string name, string fallback) => values.TryGetValue(name, out var value) ? value : fallback;

    public int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    public int[] Ints(string name, string fallback) =>
        Get(name, fallback).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
}
