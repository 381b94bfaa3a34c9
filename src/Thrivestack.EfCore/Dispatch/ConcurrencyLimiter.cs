namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// How many requests one dispatcher keeps in flight, found at run time (ThriveStack documents a rate limit without
/// numbers). Additive increase, multiplicative decrease, from the configured maximum, with a cautious probe:
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>The limit starts at the configured maximum: the first round trip of a backlog says whether the server takes that
/// many (a refusal drops it at once, below). A start at 1 with TCP's slow start (doubling per round trip) cost a new host
/// its first three round trips: 0.84-0.87x of the network limit on its first 20,000 rows at 100 ms against 0.87-0.91x from the
/// maximum, while a gateway's ceiling costs one round of 429 answers either way (docs/benchmarks.md).</item>
/// <item>Below the maximum it grows by one per round trip (1/limit per success), and only while the dispatcher actually
/// uses the whole limit: a quiet app never inflates it.</item>
/// <item>A 429, a 503 or a timeout means overload: the limit drops to the number of requests that were in flight ahead
/// of the refused one (a gateway's concurrency ceiling), and to at most 0.9 times itself (a rate limit), once per round
/// trip however many answers of the same round report it.</item>
/// <item>Answers much slower than the fastest seen are a queue building up: when the recent round trips (a moving
/// average, so one slow answer of a busy machine does not count) take twice the fastest plus 50 ms, the limit drops
/// to 0.9 times itself, once per round trip. The fastest ages by 0.5 % per answer, so a round trip that grows for good
/// (a slower route) becomes the new normal within about fifty answers.</item>
/// <item>Near a level that was refused before, growing by one more request waits for <see cref="ProbeRounds"/> round
/// trips without overload, so a fixed gateway ceiling costs one 429 in about that many round trips instead of one in
/// every other; once a request above that level succeeds, the ceiling is taken to be lifted and growth is normal again.</item>
/// </list>
/// <para>Claim statements that keep growing lower the limit the same way (<see cref="RecordClaim"/>): lanes hide the
/// network's round trip, and add nothing but contention when the database is what everyone waits for.</para>
/// <para>Vector's adaptive request concurrency and TCP congestion control work the same way; the probe near a known ceiling
/// is what keeps the share of 429 answers low under a fixed gateway limit.</para>
/// </remarks>
internal sealed class ConcurrencyLimiter
{
    /// <summary>Round trips without overload before probing a level that was refused.</summary>
    public const int ProbeRounds = 8;

    private readonly Lock gate = new();
    private readonly Queue<TaskCompletionSource> waiters = new();
    private readonly int max;
    private readonly TimeProvider time;
    private readonly LatencyTrend roundTrips = new(TimeSpan.FromMilliseconds(50));
    private readonly LatencyTrend claims = new(TimeSpan.FromMilliseconds(20));
    private readonly LatencyTrend acknowledgements = new(TimeSpan.FromMilliseconds(20));
    private double limit;
    private int? refusedLevel;
    private double probeCredit;
    private int inFlight;
    private int sending;
    private long lastDecrease;

    public ConcurrencyLimiter(int max, TimeProvider time)
    {
        this.max = max;
        this.time = time;
        limit = max;
        lastDecrease = time.GetTimestamp();
    }

    /// <summary>The current limit, between 1 and the configured maximum.</summary>
    public double Limit
    {
        get { lock (gate) { return limit; } }
    }

    /// <summary>Slots held now.</summary>
    public int InFlight
    {
        get { lock (gate) { return inFlight; } }
    }

    /// <summary>True when more slots are held than the limit allows (it dropped): a holder should let go before its next send.</summary>
    public bool OverLimit
    {
        get { lock (gate) { return inFlight > Allowed; } }
    }

    /// <summary>
    /// True while a request's round trip takes at least twice as long as the database's part of a page, a claim and an
    /// acknowledgement (or before a round trip and a claim are measured: a new host on a backlog wakes its lanes at once):
    /// then more lanes hide the wait. On a loopback or a fast network the database is the wait (on SQLite, its one writer),
    /// and lanes beyond one add only contention. Twice, because the lanes' own contention for a small machine's cores
    /// lengthens the round trips they measure.
    /// </summary>
    public bool NetworkIsTheWait
    {
        get
        {
            lock (gate)
            {
                return roundTrips.Recent == TimeSpan.Zero || claims.Recent == TimeSpan.Zero
                    || roundTrips.Recent >= 2 * (claims.Recent + acknowledgements.Recent);
            }
        }
    }

    private int Allowed => Math.Max(1, (int)limit);

    /// <summary>Waits for a free slot. Dispose the slot to free it.</summary>
    public async ValueTask<Slot> AcquireAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            TaskCompletionSource waiter;
            lock (gate)
            {
                if (inFlight < Allowed)
                {
                    inFlight++;
                    return new Slot(this);
                }

                waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                waiters.Enqueue(waiter);
            }

            await waiter.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Notes that a send starts on a held slot: what the answer's feedback is judged against. Requests actually in flight
    /// are counted, not slots: a lane holds its slot while it claims and acknowledges too, and a gateway counts requests.
    /// Every call is followed by one <see cref="Record"/>.
    /// </summary>
    public SendStart StartSend()
    {
        lock (gate)
        {
            sending++;
            return new SendStart(time.GetTimestamp(), inFlight, sending, Allowed);
        }
    }

    /// <summary>Adjusts the limit from one answer.</summary>
    public void Record(SendStart start, SendFeedback feedback)
    {
        var elapsed = time.GetElapsedTime(start.Timestamp);
        lock (gate)
        {
            sending = Math.Max(0, sending - 1);
            switch (feedback)
            {
                case SendFeedback.Success when roundTrips.AddAndCheckSlow(elapsed):
                    Decrease(start, limit * 0.9, refused: false);
                    break;
                case SendFeedback.Success:
                    Increase(start);
                    break;
                case SendFeedback.Overload:
                    Decrease(start, Math.Min(limit * 0.9, start.Sending - 1), refused: true);
                    break;
            }

            WakeWaiters();
        }
    }

    /// <summary>
    /// Adjusts the limit from one claim statement that started at <paramref name="startTimestamp"/>: claims that keep
    /// growing (the database, not ThriveStack, is the bottleneck: several dispatchers' lanes contending, or the app's own
    /// writes on SQLite) lower the limit by a tenth, once per round trip. More lanes only help while the network is the wait.
    /// </summary>
    public void RecordClaim(long startTimestamp)
    {
        var elapsed = time.GetElapsedTime(startTimestamp);
        lock (gate)
        {
            if (claims.AddAndCheckSlow(elapsed))
            {
                Decrease(new SendStart(startTimestamp, inFlight, sending, Allowed), limit * 0.9, refused: false);
                WakeWaiters();
            }
        }
    }

    /// <summary>Notes how long an acknowledgement that started at <paramref name="startTimestamp"/> took (see <see cref="NetworkIsTheWait"/>).</summary>
    public void RecordAcknowledgement(long startTimestamp)
    {
        var elapsed = time.GetElapsedTime(startTimestamp);
        lock (gate)
        {
            acknowledgements.AddAndCheckSlow(elapsed);
        }
    }

    private void Increase(SendStart start)
    {
        // Application-limited: the dispatcher did not use the whole limit, so this answer says nothing about a larger one.
        if (start.Slots < start.Allowed || limit >= max)
        {
            return;
        }

        if (refusedLevel is { } refused && start.Sending >= refused)
        {
            // A request at the refused level went through: the ceiling is gone.
            refusedLevel = null;
        }

        if (refusedLevel is { } level && Allowed + 1 >= level)
        {
            // The next whole step reaches the refused level: wait ProbeRounds round trips (one credit per success in each).
            probeCredit += 1.0 / Allowed;
            if (probeCredit < ProbeRounds)
            {
                return;
            }

            probeCredit = 0;
            limit = Math.Min(max, Allowed + 1);
            return;
        }

        limit = Math.Min(max, limit + (1 / limit));
    }

    private void Decrease(SendStart start, double target, bool refused)
    {
        // One decrease per round trip: answers to requests sent before the last decrease describe the old limit.
        if (start.Timestamp < lastDecrease)
        {
            return;
        }

        var lowered = Math.Max(1, Math.Min(limit, target));
        if (!refused && lowered >= limit)
        {
            // Already at the floor: nothing to lower, and no round trip's grace to start.
            return;
        }

        lastDecrease = time.GetTimestamp();
        limit = lowered;
        probeCredit = 0;
        if (refused)
        {
            refusedLevel = Math.Max(2, start.Sending);
        }
    }

    private void Release()
    {
        lock (gate)
        {
            inFlight--;
            WakeWaiters();
        }
    }

    private void WakeWaiters()
    {
        var free = Allowed - inFlight;
        while (free-- > 0 && waiters.TryDequeue(out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>One held slot; disposing frees it.</summary>
    internal sealed class Slot(ConcurrencyLimiter owner) : IDisposable
    {
        private int released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref released, 1) == 0)
            {
                owner.Release();
            }
        }
    }
}
