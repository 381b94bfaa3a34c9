using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// The pipe does not run dry between a lane's pages: on a backlog, the next page is claimed while the page's last request
/// is in flight, and given back at once when the lane must wait instead of sending it. Observed through the leases the
/// portable claim writes into each row (SQLite told to use it): the dispatcher code under test is the same for every claim.
/// </summary>
public sealed class ClaimAheadTests : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private DispatchHarness harness = null!;

    public async Task InitializeAsync() => harness = await DispatchHarness.StartAsync(new PortableSqliteTestDatabase());

    public async Task DisposeAsync() => await harness.DisposeAsync();

    [Fact]
    public async Task Lane_LastRequestOfAFullPageInFlight_ClaimsTheNextPageMeanwhile()
    {
        var hold = await StartOnBacklogAsync();

        // The page's first three batches are delivered and acknowledged; the fourth is held. Only a claim made while it is in
        // flight can lease rows beyond the page's own five.
        await harness.WaitForOutboxAsync(rows => Leased(rows) == 5 + PageRows, Deadline);
        Assert.Equal(FirstPageRequests, harness.StandIn.AcceptedRequestCount + 1);

        hold.Answer(null);
        await harness.WaitForOutboxAsync(rows => rows.Count == 0, Deadline);
        Assert.Equal(Users, harness.StandIn.Events.Count);
        Assert.Equal(Users, harness.StandIn.Events.Select(e => e.UserId).Distinct().Count());
    }

    [Fact]
    public async Task Lane_PausedAfterClaimingAhead_GivesThePageClaimedAheadBackAtOnce()
    {
        var hold = await StartOnBacklogAsync();
        await harness.WaitForOutboxAsync(rows => Leased(rows) == 5 + PageRows, Deadline);

        // A refused token pauses every lane for an hour: the page claimed ahead is released now, not left leased until its
        // lease ends (half an hour here), so another instance, or this one after the pause, can take it at once.
        hold.Answer(HttpStatusCode.Unauthorized);
        await harness.WaitForOutboxAsync(rows => rows.Count == Users - 15 && Leased(rows) == 0, Deadline);
        Assert.All(await harness.RowsAsync(), r => Assert.Equal(0, r.Attempts));
    }

    private const int Users = 45;

    /// <summary>One lane, batches of 5: pages of four batches (20 rows; one lane claims four batches at a time).</summary>
    private const int PageRows = 20;

    private const int FirstPageRequests = 4;

    private static int Leased(List<OutboxMessage> rows) => rows.Count(r => r.LeaseId is not null);

    private async Task<HoldRequest> StartOnBacklogAsync()
    {
        await harness.EnqueueAsync(Enumerable.Range(0, Users).Select(i => ($"u{i:00}", (IReadOnlyDictionary<string, object?>?)null)));
        var hold = new HoldRequest(FirstPageRequests);
        var host = harness.BuildHost(
            o =>
            {
                o.MaxConcurrentRequests = 1;
                o.MaxEventsPerBatch = 5;
                o.LeaseDuration = TimeSpan.FromMinutes(30);

                // The held request waits for the test, not for the client's timeout.
                o.RequestTimeout = TimeSpan.FromMinutes(5);
                o.RetryBaseDelay = TimeSpan.FromHours(1);
                o.RetryMaxDelay = TimeSpan.FromHours(1);
            },
            services: s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => hold));
        await host.StartAsync();
        await hold.Held.WaitAsync(Deadline);
        return hold;
    }

    /// <summary>Holds the <c>n</c>th request until <see cref="Answer"/>: passed on to the stand-in, or answered with a status instead.</summary>
    private sealed class HoldRequest(int n) : DelegatingHandler
    {
        private readonly TaskCompletionSource held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<HttpStatusCode?> answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int count;

        public Task Held => held.Task;

        public void Answer(HttpStatusCode? status) => answer.TrySetResult(status);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref count) == n)
            {
                held.TrySetResult();
                if (await answer.Task.WaitAsync(cancellationToken) is { } status)
                {
                    return new HttpResponseMessage(status) { RequestMessage = request, Content = new StringContent("{\"message\":\"held\"}") };
                }
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }
}
