using System.Globalization;

namespace Thrivestack.EfCore.Telemetry;

/// <summary>Durations for log lines, rounded as a person reads them: "20 ms", "0.8 s", "12 s", "5 min", "1.5 h", "2 d".</summary>
internal static class HumanDuration
{
    public static string Format(TimeSpan duration)
    {
        var seconds = Math.Max(0, duration.TotalSeconds);
        return seconds switch
        {
            < 0.1 => Rounded(seconds * 1000, 0, "ms"),
            < 10 => Rounded(seconds, 1, "s"),
            < 60 => Rounded(seconds, 0, "s"),
            < 600 => Rounded(seconds / 60, 1, "min"),
            < 3600 => Rounded(seconds / 60, 0, "min"),
            < 86_400 => Rounded(seconds / 3600, 1, "h"),
            _ => Rounded(seconds / 86_400, 1, "d"),
        };
    }

    private static string Rounded(double value, int digits, string unit) =>
        Math.Round(value, digits, MidpointRounding.AwayFromZero).ToString(digits == 0 ? "0" : "0.#", CultureInfo.InvariantCulture) + " " + unit;
}
