using System.Diagnostics;
using Npgsql;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal static class ReadinessProbe
{
    private static readonly TimeSpan MaxInterval = TimeSpan.FromSeconds(1);

    public static async Task WaitAsync(string connectionString, TimeSpan deadline, Func<string> diagnostics)
    {
        var probe = ConnectionStrings.Unpooled(connectionString);
        var clock = Stopwatch.StartNew();
        var interval = TimeSpan.FromMilliseconds(25);
        Exception? lastError;
        do
        {
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync();
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                lastError = e;
            }

            await Task.Delay(interval);
            interval = TimeSpan.FromTicks(Math.Min(interval.Ticks * 2, MaxInterval.Ticks));
        }
        while (clock.Elapsed < deadline);

        var target = new NpgsqlConnectionStringBuilder(connectionString);
        throw new TimeoutException(
            $"PostgreSQL at {target.Host}:{target.Port} did not accept connections within {deadline.TotalSeconds:0} s: " +
            $"{lastError?.Message}{Environment.NewLine}{diagnostics()}",
            lastError);
    }
}
