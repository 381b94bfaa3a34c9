using Npgsql;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

[Collection(PostgresCollection.Name)]
public sealed class PostgresServerTests(PostgresServer server)
{
    [Fact]
    public async Task CreatedDatabaseAcceptsCreateInsertAndSelect()
    {
        var connectionString = await server.CreateDatabaseAsync("smoke");

        await ExecuteAsync(connectionString, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)");
        await ExecuteAsync(connectionString, "INSERT INTO items VALUES (1, 'first')");

        Assert.Equal("first", await ScalarAsync(connectionString, "SELECT name FROM items WHERE id = 1"));
    }

    [Fact]
    public async Task CreatedDatabasesAreDistinct()
    {
        var first = new NpgsqlConnectionStringBuilder(await server.CreateDatabaseAsync()).Database;
        var second = new NpgsqlConnectionStringBuilder(await server.CreateDatabaseAsync()).Database;

        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task StopMakesConnectionsFailAndStartBringsTheDataBack()
    {
        if (!server.CanRestart)
        {
            await Assert.ThrowsAsync<NotSupportedException>(server.StopAsync);
            return;
        }

        var connectionString = await server.CreateDatabaseAsync("restart");
        await ExecuteAsync(connectionString, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)");
        await ExecuteAsync(connectionString, "INSERT INTO items VALUES (1, 'kept')");

        await server.StopAsync();
        try
        {
            NpgsqlConnection.ClearAllPools();
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarAsync(connectionString, "SELECT 1"));
        }
        finally
        {
            // Other tests in the collection share this server.
            await server.StartAsync();
            NpgsqlConnection.ClearAllPools();
        }

        Assert.Equal("kept", await ScalarAsync(connectionString, "SELECT name FROM items WHERE id = 1"));
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync();
    }
}
