using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>
/// Answers the dispatcher's requests by their number (1, 2, ... in the order the dispatcher sent them, which is what its
/// rules judge answers by; two lanes' requests may arrive in the other order), to stage several lanes' answers in a chosen
/// order: request 1 waits until <c>firstWaitsFor</c> requests have arrived, so several are in flight at once; each then
/// waits for its gate (if the plan names one) and is answered as the plan says. <see cref="Pass"/> hands it on to the
/// stand-in.
/// </summary>
internal sealed class ScriptedAnswers(int firstWaitsFor, Func<int, (HttpStatusCode Status, TaskCompletionSource? Gate)> plan) : DelegatingHandler
{
    /// <summary>"Hand it on": the stand-in answers.</summary>
    public const HttpStatusCode Pass = HttpStatusCode.OK;

    private readonly TaskCompletionSource arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int count;
    private int refusals;

    /// <summary>Refusals (not handed on) answered so far.</summary>
    public int Refusals => Volatile.Read(ref refusals);

    /// <summary>
    /// A host (not started) whose requests go through these answers, on <paramref name="clock"/>, with batches of 5 and
    /// nothing that ends by itself while a test stages its answers: no quick retries, and requests, leases and polls that
    /// outlast the test. Backoffs and pauses end when the test moves the clock.
    /// </summary>
    public IHost BuildHost(DispatchHarness harness, TimeProvider clock, Action<ThrivestackOptions>? configure = null) =>
        harness.BuildHost(
            o =>
            {
                o.MaxEventsPerBatch = 5;
                o.MaxRequestRetries = 0;
                o.RequestTimeout = TimeSpan.FromMinutes(10);
                o.RetryMaxDelay = TimeSpan.FromMinutes(5);
                o.PollInterval = TimeSpan.FromHours(1);
                o.LeaseDuration = TimeSpan.FromHours(1);
                configure?.Invoke(o);
            },
            clock,
            s => s.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => this));

    /// <summary>A gate for the plan; open it with <c>TrySetResult</c>.</summary>
    public static TaskCompletionSource Gate() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref count) >= firstWaitsFor)
        {
            arrived.TrySetResult();
        }

        Assert.True(request.Options.TryGetValue(ThrivestackClient.RequestNumber, out var sent), "the request carries no number");
        var number = checked((int)sent);
        if (number == 1)
        {
            await arrived.Task.WaitAsync(cancellationToken);
        }

        var (status, gate) = plan(number);
        if (gate is not null)
        {
            await gate.Task.WaitAsync(cancellationToken);
        }

        if (status == Pass)
        {
            return await base.SendAsync(request, cancellationToken);
        }

        var refused = new HttpResponseMessage(status) { Content = new StringContent("""{"error":"refused by the test"}""") };
        if (status == HttpStatusCode.TooManyRequests)
        {
            refused.Headers.RetryAfter = new RetryConditionHeaderValue(TimeSpan.FromSeconds(30));
        }

        Interlocked.Increment(ref refusals);
        return refused;
    }
}
