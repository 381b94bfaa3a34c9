using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Thrivestack.EfCore.Interception;

/// <summary>What the library needs to know about a context's database provider.</summary>
internal static class ProviderFacts
{
    /// <summary>True for SQL providers (SQLite, PostgreSQL, SQL Server); false for EF's InMemory and Cosmos.</summary>
    public static bool IsRelational(IDbContextOptions options) =>
        options.Extensions.Any(e => e is RelationalOptionsExtension);

    /// <summary>The provider's package name, as EF names it (<c>Microsoft.EntityFrameworkCore.InMemory</c>), for messages.</summary>
    public static string Name(DbContext context) => context.Database.ProviderName ?? "no provider";
}
