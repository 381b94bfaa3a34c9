using Microsoft.Data.Sqlite;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Thrivestack.EfCore.IntegrationTests.Scale;

/// <summary>
/// A dispatcher process on a SQLite file, SIGKILLed with several batches in flight: a dispatcher of another process takes
/// the outbox-wide lease over once the dead holder missed half a lease of renewals, loses nothing, keeps each user's order,
/// and re-sends at most what the killed one had in flight or accepted and not yet acknowledged (README "SQLite: one
/// dispatcher per outbox": a lane's last two pages at most).
/// </summary>
public sealed class SqliteKillTests(ITestOutputHelper output) : IAsyncLifetime
{
    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(new SqliteTestDatabase());

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task DispatcherProcess_KilledMidDrainWithSeveralBatchesInFlight_LosesNothingAndRepeatsOnlyWhatItHadNotAcknowledged()
    {
        const int Users = 1_000, EventsPerUser = 5, Batch = 20;
        // Killed halfway, when a process that acknowledged nothing would re-send more than the bound below.
        var connectionString = ((SqliteTestDatabase)harness.Database).ConnectionString;
        string? deadHolder = null;
        var outcome = await KillMidDrain.RunAsync(
            harness, connectionString, Users, EventsPerUser, Batch, killAfter: Users * EventsPerUser / 2,
            afterKill: async () => deadHolder = await LeaseHolderAsync(connectionString));

        Assert.True(outcome.ArrivedBeforeKill < outcome.Total, "the killed process delivered everything before it was killed");

        // The killed holder's lease was not given back (it never stopped) and was taken over. Whether the test's dispatcher
        // first stood by (logs 38 and 39, pinned by OutboxLeaseTests) depends on whether it starts before the lease ends.
        Assert.NotNull(deadHolder);
        var holder = await LeaseHolderAsync(connectionString);
        Assert.NotNull(holder);
        Assert.NotEqual(deadHolder, holder);
        Assert.Equal(outcome.Total, outcome.Distinct);
        KillMidDrain.AssertRepeatsOnlyWhatWasCutOff(outcome, Batch);
        Assert.True(outcome.PeakBeforeKill > 1, $"the killed process had at most {outcome.PeakBeforeKill} request in flight");
        Assert.Empty(outcome.OutOfOrderUsers);
        output.WriteLine(outcome.ToString());
    }

    private static async Task<string?> LeaseHolderAsync(string connectionString)
    {
        await using var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT \"lock_owner\" FROM \"thrivestack_backfill\" WHERE \"name\" = '(dispatcher)'";
        return await command.ExecuteScalarAsync() as string;
    }
}
