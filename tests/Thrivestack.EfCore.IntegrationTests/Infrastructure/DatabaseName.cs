using System.Text;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal static class DatabaseName
{
    private const int MaxPrefixLength = 30;

    /// <summary>A unique, lower-case name that fits PostgreSQL's 63-byte identifier limit and needs no escaping.</summary>
    public static string Create(string? prefix)
    {
        var safe = new StringBuilder();
        foreach (var c in (prefix ?? string.Empty).ToLowerInvariant())
        {
            if (safe.Length < MaxPrefixLength && (char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                safe.Append(c);
            }
        }

        return $"{(safe.Length == 0 ? "test" : safe.ToString())}_{Guid.NewGuid():N}";
    }
}
