using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Startup;

public sealed class SqliteOutboxCreationTests : OutboxCreationTests
{
    protected override string OutboxIndexQuery =>
        "SELECT name AS \"Value\" FROM sqlite_master WHERE type = 'index' AND tbl_name = 'thrivestack_outbox'";

    protected override Task<TestDatabase> CreateDatabaseAsync() => Task.FromResult<TestDatabase>(new SqliteTestDatabase());
}
