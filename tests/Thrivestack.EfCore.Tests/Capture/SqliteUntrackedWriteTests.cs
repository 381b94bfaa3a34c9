using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

public sealed class SqliteUntrackedWriteTests : UntrackedWriteTests
{
    protected override Task<TestDatabase> CreateDatabaseAsync() => Task.FromResult<TestDatabase>(new SqliteTestDatabase());
}
