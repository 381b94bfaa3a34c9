using System.Globalization;
using System.Text;

namespace Thrivestack.EfCore.Testing.Recording;

/// <summary>
/// What the stand-in received: requests and accepted events in arrival order, counters, and a signal that completes
/// after every recorded request.
/// </summary>
internal sealed class StandInRecorder
{
    private readonly Lock gate = new();
    private readonly List<ReceivedRequest> requests = [];
    private readonly List<ReceivedIdentifyEvent> events = [];
    private TaskCompletionSource changed = NewSignal();
    private int nextIndex = -1;
    private int acceptedEventCount;
    private int acceptedRequestCount;
    private int tooManyRequestsCount;

    public int AcceptedEventCount => Volatile.Read(ref acceptedEventCount);

    public int AcceptedRequestCount => Volatile.Read(ref acceptedRequestCount);

    public int TooManyRequestsCount => Volatile.Read(ref tooManyRequestsCount);

    /// <summary>Gets a task that completes when the next request is recorded, on <see cref="Signal"/> or on <see cref="Reset"/>.</summary>
    public Task Changed => Volatile.Read(ref changed).Task;

    /// <summary>Takes the arrival index of a new request.</summary>
    public int NextIndex() => Interlocked.Increment(ref nextIndex);

    public IReadOnlyList<ReceivedRequest> Requests() { lock (gate) { return [.. requests]; } }

    public IReadOnlyList<ReceivedIdentifyEvent> Events() { lock (gate) { return [.. events]; } }

    public IReadOnlyList<ReceivedIdentifyEvent> EventsFor(string userId)
    {
        lock (gate) { return events.FindAll(e => string.Equals(e.UserId, userId, StringComparison.Ordinal)); }
    }

    /// <summary>Records a request; when it was accepted, also its events (an empty list when events are not kept).</summary>
    public void Record(ReceivedRequest request, IReadOnlyList<ReceivedIdentifyEvent>? acceptedEvents = null)
    {
        lock (gate)
        {
            // Requests answered out of arrival order (Latency, parallel clients) are placed by index; usually at the end.
            var position = requests.Count;
            while (position > 0 && requests[position - 1].Index > request.Index)
            {
                position--;
            }

            requests.Insert(position, request);
            if (acceptedEvents is not null)
            {
                InsertEvents(request.Index, acceptedEvents);
                acceptedRequestCount++;
                acceptedEventCount += request.EventCount;
            }

            if (request.StatusCode == 429)
            {
                tooManyRequestsCount++;
            }
        }

        Signal();
    }

    /// <summary>Completes <see cref="Changed"/>, so that waiters check their condition again.</summary>
    public void Signal() => Interlocked.Exchange(ref changed, NewSignal()).TrySetResult();

    public void Reset()
    {
        lock (gate)
        {
            requests.Clear();
            events.Clear();
            acceptedEventCount = 0;
            acceptedRequestCount = 0;
            tooManyRequestsCount = 0;
            nextIndex = -1;
        }

        Signal();
    }

    /// <summary>Describes what arrived, e.g. "3 request(s) answered: 200 x1, 401 x2; last error: 401 Access token missing or invalid".</summary>
    public string DescribeRequests()
    {
        lock (gate)
        {
            if (requests.Count == 0)
            {
                return "no request was answered";
            }

            var text = new StringBuilder();
            text.Append(CultureInfo.InvariantCulture, $"{requests.Count} request(s) answered: ");
            text.AppendJoin(", ", requests.GroupBy(r => r.StatusCode).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Count()}"));
            if (requests.FindLast(r => r.Error is not null) is { } failed)
            {
                text.Append(CultureInfo.InvariantCulture, $"; last error: {failed.StatusCode} {failed.Error}");
            }

            return text.ToString();
        }
    }

    private void InsertEvents(int requestIndex, IReadOnlyList<ReceivedIdentifyEvent> events)
    {
        var position = this.events.Count;
        while (position > 0 && this.events[position - 1].RequestIndex > requestIndex)
        {
            position--;
        }

        this.events.InsertRange(position, events);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
