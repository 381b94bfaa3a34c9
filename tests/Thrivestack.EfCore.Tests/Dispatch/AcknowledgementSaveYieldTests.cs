using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// On SQLite (one writer at a time) the dispatcher acknowledges what was delivered only once the app's saves in progress
/// ended (or after the signal's <see cref="OutboxSignal.SaveYield"/>, here long enough never to run out).
/// </summary>
public sealed class AcknowledgementSaveYieldTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = HeldSave.Deadline;

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_AppSaveInProgressOnSqlite_AcknowledgesOnlyAfterItEnds()
    {
        var host = await harness.StartHostAsync();
        var signal = host.Services.GetRequiredService<OutboxSignal>();
        signal.SaveYield = TimeSpan.FromMinutes(1);

        // The library's interceptor runs before the app's, so the save is counted while the app's holds it.
        var hold = new HeldSave();
        var builder = new DbContextOptionsBuilder<TestDbContext>().UseApplicationServiceProvider(host.Services);
        harness.Database.Configure(builder);
        await using var held = new TestDbContext(builder.AddThrivestackIdentifyInterceptor().AddInterceptors(hold).Options);
        held.Users.Add(new AppUser { Id = Guid.NewGuid(), Email = "held@example.com" });
        var heldSave = held.SaveChangesAsync();
        await hold.Entered.Task.WaitAsync(Deadline);
        Assert.Equal(1, signal.SavesInProgress);

        await DispatchHarness.SaveUsersAsync(host, 1, "shipped");
        await harness.StandIn.WaitForEventsAsync(1, Deadline);
        await HeldSave.WaitUntilAsync(() => signal.HasYieldWaiter);

        Assert.True(signal.HasYieldWaiter, "The acknowledgement did not wait for the app's save in progress.");
        var shipped = Assert.Single(await harness.RowsAsync());
        Assert.Equal(OutboxRowState.Pending, shipped.State);
        hold.Release.SetResult();
        await heldSave.WaitAsync(Deadline);
        await harness.WaitForOutboxAsync(rows => rows.All(r => r.Id != shipped.Id || r.State == OutboxRowState.Delivered), Deadline);
    }
}
