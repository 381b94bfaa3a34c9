namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>Delays each request by a random 0 to N ms (seeded), and notes the most in flight at once.</summary>
internal sealed class RandomDelayHandler(int seed, int maxMilliseconds) : DelegatingHandler
{
    private readonly Random random = new(seed);
    private readonly Lock gate = new();
    private int inFlight;

    public int Peak { get; private set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        int delay;
        lock (gate)
        {
            delay = random.Next(maxMilliseconds);
            Peak = Math.Max(Peak, ++inFlight);
        }

        try
        {
            await Task.Delay(delay, cancellationToken);
            return await base.SendAsync(request, cancellationToken);
        }
        finally
        {
            lock (gate)
            {
                inFlight--;
            }
        }
    }
}
