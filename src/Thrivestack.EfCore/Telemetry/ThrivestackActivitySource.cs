using System.Diagnostics;

namespace Thrivestack.EfCore.Telemetry;

/// <summary>The <see cref="ActivitySource"/> <c>Thrivestack.EfCore</c>: one span per request to ThriveStack.</summary>
internal static class ThrivestackActivitySource
{
    public const string Name = "Thrivestack.EfCore";

    public static ActivitySource Instance { get; } = new(Name);
}
