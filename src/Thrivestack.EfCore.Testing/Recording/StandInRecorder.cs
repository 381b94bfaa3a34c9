using System.Globalization;
using System.Text;

namespace Thrivestack.EfCore.Testing.Recording;

/// <summary>
/// What the stand-in received: requests and accepted events in arrival order, counters, and a signal that completes
/// after every recorded request.
/// </summary>
internal sealed class StandInRecorder
{
    private readonly Lock _gate = new();
    private readonly List<ReceivedRequest> _requests = [];
    private readonly List<ReceivedIdentifyEvent> _events = [];
    private TaskCompletionSource _changed = NewSignal();
    private int _nextIndex = -1;
    private int _acceptedEventCount;
    private int _acceptedRequestCount;
    private int _tooManyRequestsCount;

    public int AcceptedEventCount => Volatile.Read(ref _acceptedEventCount);

    public int AcceptedRequestCount => Volatile.Read(ref _acceptedRequestCount);

    public int TooManyRequestsCount => Volatile.Read(ref _tooManyRequestsCount);

    /// <summary>Gets a task that completes when the next request is recorded, on <see cref="Signal"/> or on <see cref="Reset"/>.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    /// <summary>Takes the arrival index of a new request.</summary>
    public int NextIndex() => Interlocked.Increment(ref _nextIndex);

    public IReadOnlyList<ReceivedRequest> Requests() { lock (_gate) { return [.. _requests]; } }

    public IReadOnlyList<ReceivedIdentifyEvent> Events() { lock (_gate) { return [.. _events]; } }

    public IReadOnlyList<ReceivedIdentifyEvent> EventsFor(string userId)
    {
        lock (_gate) { return _events.FindAll(e => string.Equals(e.UserId, userId, StringComparison.Ordinal)); }
    }

    /// <summary>Records a request; when it was accepted, also its events (an empty list when events are not kept).</summary>
    public void Record(ReceivedRequest request, IReadOnlyList<ReceivedIdentifyEvent>? acceptedEvents = null)
    {
        lock (_gate)
        {
            // Requests answered out of arrival order (Latency, parallel clients) are placed by index; usually at the end.
            int position = _requests.Count;
            while (position > 0 && _requests[position - 1].Index > request.Index)
            {
                position--;
            }

            _requests.Insert(position, request);
            if (acceptedEvents is not null)
            {
                InsertEvents(request.Index, acceptedEvents);
                _acceptedRequestCount++;
                _acceptedEventCount += request.EventCount;
            }

            if (request.StatusCode == 429)
            {
                _tooManyRequestsCount++;
            }
        }

        Signal();
    }

    /// <summary>Completes <see cref="Changed"/>, so that waiters check their condition again.</summary>
    public void Signal() => Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();

    public void Reset()
    {
        lock (_gate)
        {
            _requests.Clear();
            _events.Clear();
            _acceptedEventCount = 0;
            _acceptedRequestCount = 0;
            _tooManyRequestsCount = 0;
            _nextIndex = -1;
        }

        Signal();
    }

    /// <summary>Describes what arrived, e.g. "3 request(s) answered: 200 x1, 401 x2; last error: 401 Access token missing or invalid".</summary>
    public string DescribeRequests()
    {
        lock (_gate)
        {
            if (_requests.Count == 0)
            {
                return "no request was answered";
            }

            var text = new StringBuilder();
            text.Append(CultureInfo.InvariantCulture, $"{_requests.Count} request(s) answered: ");
            text.AppendJoin(", ", _requests.GroupBy(r => r.StatusCode).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Count()}"));
            if (_requests.FindLast(r => r.Error is not null) is { } failed)
            {
                text.Append(CultureInfo.InvariantCulture, $"; last error: {failed.StatusCode} {failed.Error}");
            }

            return text.ToString();
        }
    }

    private void InsertEvents(int requestIndex, IReadOnlyList<ReceivedIdentifyEvent> events)
    {
        int position = _events.Count;
        while (position > 0 && _events[position - 1].RequestIndex > requestIndex)
        {
            position--;
        }

        _events.InsertRange(position, events);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
