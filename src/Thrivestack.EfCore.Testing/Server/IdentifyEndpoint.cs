using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Thrivestack.EfCore.Testing.Recording;
using Thrivestack.EfCore.Testing.Validation;

namespace Thrivestack.EfCore.Testing.Server;

/// <summary>Answers each request as ThriveStack's identify endpoint would: route, auth, faults, validation, then accept.</summary>
internal sealed class IdentifyEndpoint(
    PathString path,
    bool recordEvents,
    StandInCredentials credentials,
    StandInFaults faults,
    StandInRecorder recorder,
    InFlightRequests inFlight,
    TimeProvider timeProvider,
    CancellationToken stopping)
{
    public const int MaxBodyBytes = 2_000_000;

    private const string Unauthorized = "Access token missing or invalid";
    private const string ConcurrencyLimited = "Rate Limit Exceeded (too many concurrent requests)";

    public async Task HandleAsync(HttpContext context)
    {
        var index = recorder.NextIndex();
        var receivedAt = timeProvider.GetUtcNow();
        var aborted = context.RequestAborted;
        Verdict verdict;
        try
        {
            verdict = await DecideAsync(context, index, aborted).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is OperationCanceledException or IOException)
        {
            recorder.Record(new ReceivedRequest
            {
                Index = index,
                ReceivedAt = receivedAt,
                StatusCode = StatusCodes.Status499ClientClosedRequest,
                BodyBytes = BodyBytes(context.Request, 0),
                Error = "the request was aborted before it was answered",
            });
            context.Abort();
            return;
        }

        recorder.Record(
            new ReceivedRequest
            {
                Index = index,
                ReceivedAt = receivedAt,
                StatusCode = verdict.StatusCode,
                EventCount = verdict.EventCount,
                BodyBytes = verdict.BodyBytes,
                Error = verdict.Error,
                UserIds = verdict.UserIds,
            },
            verdict.Events);
        try
        {
            await WriteAsync(context.Response, verdict, aborted).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is OperationCanceledException or IOException)
        {
            context.Abort();
        }
    }

    private async Task<Verdict> DecideAsync(HttpContext context, int index, CancellationToken aborted)
    {
        var request = context.Request;
        var announcedBytes = BodyBytes(request, 0);
        if (!request.Path.Equals(path))
        {
            return new Verdict(StatusCodes.Status404NotFound, $"not found: the stand-in only serves POST {path}") { BodyBytes = announcedBytes };
        }

        if (!HttpMethods.IsPost(request.Method))
        {
            context.Response.Headers.Allow = HttpMethods.Post;
            return new Verdict(StatusCodes.Status405MethodNotAllowed, $"method {request.Method} is not allowed; use POST") { BodyBytes = announcedBytes };
        }

        if (faults.Unauthorized || !credentials.Accepts(request.Headers))
        {
            return new Verdict(StatusCodes.Status401Unauthorized, Unauthorized) { BodyBytes = announcedBytes };
        }

        // A gateway refuses at once and names no time to wait: no Retry-After, whatever the faults say.
        if (!inFlight.TryEnter(faults.MaxConcurrentRequests))
        {
            return new Verdict(StatusCodes.Status429TooManyRequests, ConcurrencyLimited) { BodyBytes = announcedBytes };
        }

        try
        {
            return await DecideAdmittedAsync(request, index, announcedBytes, aborted).ConfigureAwait(false);
        }
        finally
        {
            // Before the request is recorded and answered, so that a client that got its answer finds the slot free.
            inFlight.Exit();
        }
    }

    private async Task<Verdict> DecideAdmittedAsync(HttpRequest request, int index, int announcedBytes, CancellationToken aborted)
    {
        await DelayAsync(faults.NextLatency(), aborted).ConfigureAwait(false);
        if (faults.NextFault() is { } fault)
        {
            return new Verdict(fault.StatusCode, fault.Message, fault.RetryAfter) { BodyBytes = announcedBytes };
        }

        if (!IsJson(request.ContentType))
        {
            return new Verdict(StatusCodes.Status400BadRequest, "Content-Type must be application/json") { BodyBytes = announcedBytes };
        }

        if (request.ContentLength > MaxBodyBytes)
        {
            return TooLarge(announcedBytes);
        }

        try
        {
            using var body = await RequestBody.ReadAsync(request.Body, request.ContentLength, MaxBodyBytes + 1, aborted).ConfigureAwait(false);
            var bodyBytes = BodyBytes(request, body.Length);
            return body.Length > MaxBodyBytes ? TooLarge(bodyBytes) : Judge(body.Memory, index, bodyBytes);
        }
        catch (BadHttpRequestException exception)
        {
            return new Verdict(exception.StatusCode, exception.Message) { BodyBytes = announcedBytes };
        }
    }

    private Verdict Judge(ReadOnlyMemory<byte> body, int index, int bodyBytes)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException)
        {
            return new Verdict(StatusCodes.Status400BadRequest, "request body is not valid JSON") { BodyBytes = bodyBytes };
        }

        using (document)
        {
            var root = document.RootElement;
            var eventCount = root.ValueKind == JsonValueKind.Array ? root.GetArrayLength() : 0;
            if (IdentifyBatchReader.Validate(root) is string error)
            {
                return new Verdict(StatusCodes.Status400BadRequest, error) { EventCount = eventCount, BodyBytes = bodyBytes };
            }

            var events = recordEvents ? ReadEvents(root, index) : [];
            var userIds = events.Length == 0 ? [] : Array.ConvertAll(events, e => e.UserId);
            if (faults.RejectedUserIds.Count > 0 && IdentifyBatchReader.FindFirst(root, faults.RejectedUserIds) is (int position, string userId))
            {
                var message = $"event {position}: user_id \"{userId}\" was rejected";
                return new Verdict(StatusCodes.Status400BadRequest, message) { EventCount = eventCount, BodyBytes = bodyBytes, UserIds = userIds };
            }

            return new Verdict(StatusCodes.Status200OK, null) { EventCount = eventCount, BodyBytes = bodyBytes, UserIds = userIds, Events = events };
        }
    }

    private Task WriteAsync(HttpResponse response, Verdict verdict, CancellationToken cancellationToken) => verdict switch
    {
        { Events: not null } when faults.EventIdResponse => StandInResponses.WriteEventIdAsync(response, faults.WarningsSnapshot(), cancellationToken),
        { Events: not null } => StandInResponses.WriteAcceptedAsync(response, cancellationToken),
        { StatusCode: StatusCodes.Status200OK } => StandInResponses.WriteSuccessFalseAsync(response, verdict.Error!, cancellationToken),
        _ => StandInResponses.WriteErrorAsync(response, verdict.StatusCode, verdict.Error!, verdict.RetryAfter, cancellationToken),
    };

    private async Task DelayAsync(TimeSpan latency, CancellationToken aborted)
    {
        if (latency <= TimeSpan.Zero)
        {
            return;
        }

        // Stopping the stand-in ends a long delay at once instead of holding up shutdown.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(aborted, stopping);
        await Task.Delay(latency, timeProvider, linked.Token).ConfigureAwait(false);
    }

    private static ReceivedIdentifyEvent[] ReadEvents(JsonElement root, int index)
    {
        var events = new ReceivedIdentifyEvent[root.GetArrayLength()];
        var i = 0;
        foreach (var element in root.EnumerateArray())
        {
            events[i++] = IdentifyBatchReader.ReadEvent(element, index);
        }

        return events;
    }

    private static Verdict TooLarge(int bodyBytes) =>
        new(StatusCodes.Status400BadRequest, "request body exceeds 2,000,000 bytes") { BodyBytes = bodyBytes };

    private static int BodyBytes(HttpRequest request, int read) =>
        request.ContentLength is long length ? (int)Math.Min(length, int.MaxValue) : read;

    private static bool IsJson(string? contentType)
    {
        if (string.Equals(contentType, "application/json", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (!MediaTypeHeaderValue.TryParse(contentType, out var parsed)
            || !parsed.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        // JSON is UTF-8 (RFC 8259): a charset parameter is allowed, but only that one.
        return parsed.Charset.Length == 0 || HeaderUtilities.RemoveQuotes(parsed.Charset).Equals("utf-8", StringComparison.OrdinalIgnoreCase);
    }
}
