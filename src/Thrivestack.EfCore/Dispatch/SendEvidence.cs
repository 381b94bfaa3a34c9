namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// What the dispatcher has seen of ThriveStack across cycles and lanes: whether its latest request succeeded (a failure
/// counts against an event only while others go through; this is the "others go through" half of that rule), and when
/// the latest-sent request that went through was sent (requests are numbered in the order they are sent, across lanes).
/// </summary>
internal sealed class SendEvidence
{
    private long sent;
    private long lastDelivered;

    /// <summary>True when the latest finished request was delivered; false after a failure, and at start.</summary>
    public bool LastRequestSucceeded { get; set; }

    /// <summary>The number of the latest-sent request that was delivered; 0 before any.</summary>
    public long LastDelivered => Interlocked.Read(ref lastDelivered);

    /// <summary>The number of the latest request sent (or about to be); 0 before any.</summary>
    public long Sent => Interlocked.Read(ref sent);

    /// <summary>Numbers a request about to be sent: 1, 2, 3, ... in the order of sending.</summary>
    public long NextRequest() => Interlocked.Increment(ref sent);

    /// <summary>Notes that request <paramref name="number"/> was delivered.</summary>
    public void Delivered(long number)
    {
        var seen = Interlocked.Read(ref lastDelivered);
        while (number > seen)
        {
            var previous = Interlocked.CompareExchange(ref lastDelivered, number, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }
}
