using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// The dispatcher end to end on the portable statements (the providers without statements of their own: SQL Server,
/// MySQL, ...), run on a SQLite file told to use them: two instances share the outbox, a user's events arrive in order,
/// a refused request is retried, and nothing is lost or sent twice.
/// </summary>
public sealed class PortableDispatchTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(new PortableSqliteTestDatabase());

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task TwoDispatchers_UsersEditedWhileBatchesAreInFlight_DeliverEveryEditOnceInEachUsersOrder()
    {
        harness.StandIn.Faults.FailNextRequests = 3;
        foreach (var seed in new[] { 3, 5 })
        {
            var delays = new RandomDelayHandler(seed, maxMilliseconds: 100);
            await harness.BuildHost(
                o => o.MaxEventsPerBatch = 4,
                services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => delays)).StartAsync();
        }

        // 30 users, each edited 8 times in separate commits while earlier events of theirs are in flight.
        const int users = 30;
        const int edits = 8;
        await UserEdits.EnqueueAsync(harness, users, edits, arrivedPerRound: 4, Deadline);

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Contains(harness.StandIn.Requests, r => r.StatusCode >= 500);
        Assert.Empty(UserEdits.OutOfOrder(harness.StandIn, users, edits));
    }
}
