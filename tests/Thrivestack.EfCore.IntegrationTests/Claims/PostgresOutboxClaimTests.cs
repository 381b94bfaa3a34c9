using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;
using Thrivestack.EfCore.Tests.Outbox;

namespace Thrivestack.EfCore.IntegrationTests.Claims;

/// <summary>The claim suite of the fast tests, on a real PostgreSQL server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresOutboxClaimTests(PostgresServer server) : OutboxClaimTests
{
    protected override async Task<TestDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server);
}

/// <summary>The claim suite on the portable claim (SQL Server, MySQL, ...), run on PostgreSQL told to use it.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PortablePostgresOutboxClaimTests(PostgresServer server) : OutboxClaimTests
{
    protected override async Task<TestDatabase> CreateDatabaseAsync() => await PostgresTestDatabase.CreateAsync(server, portable: true);
}
