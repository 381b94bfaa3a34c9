using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Capture;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>Long and odd ids on PostgreSQL, where a bounded column or an oversized index entry would refuse the save.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresIdCaptureTests(PostgresServer server) : IdCaptureTests
{
    protected override async Task<TestDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}
