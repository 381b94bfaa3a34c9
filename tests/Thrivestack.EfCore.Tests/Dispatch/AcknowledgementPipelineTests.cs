using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// Acknowledgements do not pace the sends: a lane sends its next batches, and claims and sends its next page, while the
/// database writes what ThriveStack accepted; the batches accepted meanwhile are acknowledged together. Nothing is sent
/// twice meanwhile, and what was accepted is written before the dispatcher stops.
/// </summary>
public sealed class AcknowledgementPipelineTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync();

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Dispatcher_AcknowledgementHeldUp_SendsTheNextPagesMeanwhileWithoutSendingAnyRowTwice()
    {
        // 60 users, batches of 5, one lane: pages of 4 batches, 12 requests in all.
        await harness.EnqueueAsync(Enumerable.Range(0, 60).Select(i => ($"u{i:00}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate();
        var host = BuildHost(gate);
        await host.StartAsync();

        try
        {
            // The first acknowledgement is held: the lane still sends the rest of its page and the next pages, whose users
            // are other users (the accepted rows are still in the outbox, but their users stay in flight until written).
            await gate.FirstHeld.WaitAsync(Deadline);
            await harness.StandIn.WaitUntilAsync(s => s.AcceptedRequestCount >= 12, Deadline);
            Assert.Equal(1, gate.Statements);
        }
        finally
        {
            gate.Release();
        }

        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal(60, harness.StandIn.Events.Count);
        Assert.Equal(60, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());

        // The first page's three other batches in one statement, then one per later page: 4 instead of 12 (5 when the last
        // answer came back after the release, which the stand-in's count of accepted requests cannot rule out).
        Assert.InRange(gate.Statements, 4, 5);
    }

    [Fact]
    public async Task Dispatcher_StopsWhileAnAcknowledgementIsBeingWritten_WritesItBeforeItStops()
    {
        await harness.EnqueueAsync(Enumerable.Range(0, 5).Select(i => ($"u{i}", (IReadOnlyDictionary<string, object?>?)null)));
        var gate = new AcknowledgementGate();
        var host = BuildHost(gate);
        await host.StartAsync();
        await gate.FirstHeld.WaitAsync(Deadline);

        // The held acknowledgement goes on once the host is stopping: StopAsync returns only after it is written.
        using var releaseOnStop = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(gate.Release);
        await host.StopAsync();

        Assert.Empty(await harness.RowsAsync());
        Assert.Equal(5, harness.StandIn.Events.Count);
    }

    private IHost BuildHost(AcknowledgementGate gate) =>
        harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 5;
                o.MaxConcurrentRequests = 1;
                o.PollInterval = TimeSpan.FromHours(1);
            },
            services: s => s.ConfigureDbContext<TestDbContext>(o => o.AddInterceptors(gate)));

    /// <summary>Holds the first acknowledgement (the outbox DELETE) until released; counts them all.</summary>
    private sealed class AcknowledgementGate : DbCommandInterceptor
    {
        private readonly TaskCompletionSource held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int statements;

        public Task FirstHeld => held.Task;

        public int Statements => Volatile.Read(ref statements);

        public void Release() => released.TrySetResult();

        public override async ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
        {
            await HoldAsync(command);
            return result;
        }

        public override async ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            await HoldAsync(command);
            return result;
        }

        private async Task HoldAsync(DbCommand command)
        {
            if (!command.CommandText.TrimStart().StartsWith("DELETE FROM", StringComparison.OrdinalIgnoreCase)
                || !command.CommandText.Contains("thrivestack_outbox", StringComparison.Ordinal))
            {
                return;
            }

            if (Interlocked.Increment(ref statements) == 1)
            {
                held.TrySetResult();
                await released.Task.WaitAsync(Deadline);
            }
        }
    }
}
