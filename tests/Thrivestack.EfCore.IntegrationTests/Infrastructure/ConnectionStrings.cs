using Npgsql;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal static class ConnectionStrings
{
    public static string Local(int port, string database) =>
        WithTestDefaults(new NpgsqlConnectionStringBuilder
        {
            Host = PostgresServer.LocalHost,
            Port = port,
            Username = "postgres",
            Database = database,
        });

    public static string ForDatabase(string connectionString, string database) =>
        WithTestDefaults(new NpgsqlConnectionStringBuilder(connectionString) { Database = database });

    // The fixture's own connections must not come from (or leave broken connections in) a pool that tests see.
    public static string Unpooled(string connectionString) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 5, CommandTimeout = 60 }.ConnectionString;

    private static string WithTestDefaults(NpgsqlConnectionStringBuilder builder)
    {
        builder.Pooling = true;
        builder.MaxPoolSize = 50;
        builder.Timeout = 30;
        builder.CommandTimeout = 60;
        return builder.ConnectionString;
    }
}
