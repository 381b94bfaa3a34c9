namespace Thrivestack.EfCore.Testing.Recording;

/// <summary>
/// The authorized requests being handled now, the most there were at once, and the requests refused by
/// <see cref="StandInFaults.MaxConcurrentRequests"/>; <paramref name="changed"/> is called after every admission and exit.
/// </summary>
internal sealed class InFlightRequests(Action changed)
{
    private readonly Lock gate = new();
    private int current;
    private int peak;
    private int refused;

    public int Current { get { lock (gate) { return current; } } }

    public int Peak { get { lock (gate) { return peak; } } }

    public int Refused { get { lock (gate) { return refused; } } }

    /// <summary>Admits a request unless <paramref name="limit"/> requests are in flight already; a refusal is counted.</summary>
    public bool TryEnter(int? limit)
    {
        lock (gate)
        {
            if (limit is int max && current >= max)
            {
                refused++;
                return false;
            }

            current++;
            peak = Math.Max(peak, current);
        }

        changed();
        return true;
    }

    public void Exit()
    {
        lock (gate)
        {
            current--;
        }

        changed();
    }

    /// <summary>Clears the counters; requests still in flight stay counted, so the peak restarts from them.</summary>
    public void Reset()
    {
        lock (gate)
        {
            peak = current;
            refused = 0;
        }
    }
}
