namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// One lane's hold on a <see cref="ConcurrencyLimiter"/> slot for a whole claim: taken before the claim, so a lane that
/// waits for its turn holds no rows, kept for the page the lane claims ahead (which therefore never waits for a slot), and
/// given up for a while when the limit drops below the slots held.
/// </summary>
internal sealed class SendPermit(ConcurrencyLimiter limiter) : IDisposable
{
    private ConcurrencyLimiter.Slot? slot;

    public async ValueTask AcquireAsync(CancellationToken cancellationToken) =>
        slot ??= await limiter.AcquireAsync(cancellationToken).ConfigureAwait(false);

    public async ValueTask YieldIfOverLimitAsync(CancellationToken cancellationToken)
    {
        if (slot is not null && limiter.OverLimit)
        {
            slot.Dispose();
            slot = null;
        }

        await AcquireAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        slot?.Dispose();
        slot = null;
    }
}
