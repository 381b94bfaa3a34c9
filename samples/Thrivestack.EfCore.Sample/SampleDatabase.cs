using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Sample.Model;

namespace Thrivestack.EfCore.Sample;

/// <summary>The sample's SQLite file, next to the binary, recreated on each run so every run tells the same story.</summary>
internal static class SampleDatabase
{
    public static string FilePath { get; } = Path.Combine(AppContext.BaseDirectory, "sample.db");

    public static string ConnectionString { get; } = new SqliteConnectionStringBuilder { DataSource = FilePath }.ToString();

    /// <summary>Deletes the database and creates it again from the migrations in the Migrations folder.</summary>
    public static async Task RecreateAsync(IServiceProvider services)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await db.Database.EnsureDeletedAsync();
        await db.Database.MigrateAsync(); // creates the app's tables and thrivestack_outbox
    }
}
