using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Backfill;

/// <summary>
/// A backfill chunk on PostgreSQL waits about one chunk's time for the outbox's writer lock, and at least 5 ms, before it
/// is deferred: the app's outbox inserts hold the lock's shared side for a round trip or two, and the 2 ms default
/// <c>TargetChunkDuration</c> would otherwise defer most chunks of a busy app.
/// </summary>
public sealed class PostgresChunkLockTimeoutTests
{
    [Theory]
    [InlineData(1, 5)]
    [InlineData(2, 5)]
    [InlineData(5, 5)]
    [InlineData(20, 20)]
    public void LockOutboxSql_TargetChunkDuration_WaitsAboutOneChunkAndAtLeastFiveMilliseconds(int targetMs, int lockTimeoutMs)
    {
        // Building the model and the SQL needs no server.
        using var context = new TestDbContext(new DbContextOptionsBuilder<TestDbContext>().UseNpgsql("Host=127.0.0.1;Database=unused").Options);

        var sql = NpgsqlDialect.Instance.LockOutboxSql(
            ModelMap.For(context.Model).RequireOutbox(), TimeSpan.FromMilliseconds(targetMs), context.GetService<ISqlGenerationHelper>());

        Assert.Contains($"SET LOCAL lock_timeout = '{lockTimeoutMs}ms';", sql, StringComparison.Ordinal);
    }
}
