using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;
using Thrivestack.EfCore.Tests.Startup;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

[Collection(PostgresCollection.Name)]
public sealed class PostgresOutboxCreationTests(PostgresServer server) : OutboxCreationTests
{
    protected override string OutboxIndexQuery =>
        "SELECT indexname AS \"Value\" FROM pg_indexes WHERE tablename = 'thrivestack_outbox'";

    protected override async Task<TestDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
