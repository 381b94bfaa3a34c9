namespace Thrivestack.EfCore.Testing.Recording;

/// <summary>
/// The authorized requests being handled now, the most there were at once, and the requests refused by
/// <see cref="StandInFaults.MaxConcurrentRequests"/>; <paramref name="changed"/> is called after every admission and exit.
/// </summary>
internal sealed class InFlightRequests(Action changed)
{
    private readonly Lock _gate = new();
    private int _current;
    private int _peak;
    private int _refused;

    public int Current { get { lock (_gate) { return _current; } } }

    public int Peak { get { lock (_gate) { return _peak; } } }

    public int Refused { get { lock (_gate) { return _refused; } } }

    /// <summary>Admits a request unless <paramref name="limit"/> requests are in flight already; a refusal is counted.</summary>
    public bool TryEnter(int? limit)
    {
        lock (_gate)
        {
            if (limit is int max && _current >= max)
            {
                _refused++;
                return false;
            }

            _current++;
            _peak = Math.Max(_peak, _current);
        }

        changed();
        return true;
    }

    public void Exit()
    {
        lock (_gate)
        {
            _current--;
        }

        changed();
    }

    /// <summary>Clears the counters; requests still in flight stay counted, so the peak restarts from them.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _peak = _current;
            _refused = 0;
        }
    }
}
