using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>A handler in the dispatcher's HttpClient that tells when a request has been sent and not yet answered.</summary>
internal sealed class InFlightProbe
{
    private readonly TaskCompletionSource sent = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int inFlight;
    private int peak;

    public int InFlight => Volatile.Read(ref inFlight);

    /// <summary>The most requests that were in flight at once.</summary>
    public int Peak => Volatile.Read(ref peak);

    /// <summary>Completes when the first request has been handed to the network.</summary>
    public Task FirstSent => sent.Task;

    public void AddTo(IServiceCollection services) =>
        services.AddHttpClient(ThrivestackRegistration.OptionsName<TestDbContext>()).AddHttpMessageHandler(() => new Handler(this));

    private sealed class Handler(InFlightProbe probe) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref probe.inFlight);
            int seen;
            while (now > (seen = Volatile.Read(ref probe.peak)) && Interlocked.CompareExchange(ref probe.peak, now, seen) != seen)
            {
            }

            try
            {
                var response = base.SendAsync(request, cancellationToken);
                probe.sent.TrySetResult();
                return await response;
            }
            finally
            {
                Interlocked.Decrement(ref probe.inFlight);
            }
        }
    }
}
