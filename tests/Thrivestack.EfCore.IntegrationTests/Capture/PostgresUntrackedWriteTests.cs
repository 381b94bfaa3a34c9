using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Capture;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>The untracked write path of the capture on a real PostgreSQL server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresUntrackedWriteTests(PostgresServer server) : UntrackedWriteTests
{
    protected override async Task<TestDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
