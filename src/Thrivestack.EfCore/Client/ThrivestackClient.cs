using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Net.Http.Headers;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Client;

/// <summary>
/// Posts one batch to <c>/api/identify</c> through a Polly pipeline (per-attempt timeout, a few quick retries
/// with exponential backoff and jitter for 408/429/5xx and network errors, a short <c>Retry-After</c> honoured), reads
/// at most <see cref="HttpAnswer.MaxBodyBytes"/> of the answer within the attempt and classifies it
/// (<see cref="AnswerClassifier"/>). The token goes only into the request header, never into logs or messages.
/// </summary>
internal sealed class ThrivestackClient
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    // A Retry-After longer than this is honoured by the row's next attempt time, not by holding the lease.
    private static readonly TimeSpan LongestQuickRetryWait = TimeSpan.FromSeconds(5);

    /// <summary>The longest one send can take: every attempt timing out, with the longest wait between attempts.</summary>
    public static TimeSpan LongestSend(ThrivestackOptions options) =>
        (options.RequestTimeout * (options.MaxRequestRetries + 1)) + (LongestQuickRetryWait * options.MaxRequestRetries);

    private readonly IHttpClientFactory httpClientFactory;
    private readonly string clientName;
    private readonly ThrivestackOptions options;
    private readonly TimeProvider timeProvider;
    private readonly ThrivestackMetrics metrics;
    private readonly ResiliencePipeline<HttpAnswer> pipeline;

    public ThrivestackClient(IHttpClientFactory httpClientFactory, string clientName, ThrivestackOptions options, TimeProvider timeProvider, ThrivestackMetrics metrics)
    {
        this.httpClientFactory = httpClientFactory;
        this.clientName = clientName;
        this.options = options;
        this.timeProvider = timeProvider;
        this.metrics = metrics;
        pipeline = BuildPipeline(options, timeProvider);
    }

    /// <summary>
    /// The dispatcher's number of the request (1, 2, ... in the order of sending; see <c>SendEvidence</c>), on every
    /// <see cref="HttpRequestMessage"/> it is sent as, its quick retries included: a handler can tell which request it holds.
    /// </summary>
    public static readonly HttpRequestOptionsKey<long> RequestNumber = new("Thrivestack.RequestNumber");

    public async Task<SendResult> SendAsync(ReadOnlyMemory<byte> body, int eventCount, long requestNumber, CancellationToken cancellationToken)
    {
        using var activity = ThrivestackActivitySource.Instance.StartActivity("thrivestack.identify.send", ActivityKind.Client);
        activity?.SetTag("thrivestack.batch.events", eventCount);
        activity?.SetTag("thrivestack.batch.bytes", body.Length);
        var started = timeProvider.GetTimestamp();
        var result = await SendWithTokenRefreshAsync(body, requestNumber, cancellationToken).ConfigureAwait(false);
        metrics.RecordRequest(eventCount, body.Length, timeProvider.GetElapsedTime(started), result.Outcome.ToString());
        activity?.SetTag("http.response.status_code", result.StatusCode);
        activity?.SetTag("thrivestack.outcome", result.Outcome.ToString());
        if (result.Outcome != SendOutcome.Delivered)
        {
            activity?.SetStatus(ActivityStatusCode.Error, result.Outcome.ToString());
        }

        return result;
    }

    private async Task<SendResult> SendWithTokenRefreshAsync(ReadOnlyMemory<byte> body, long requestNumber, CancellationToken cancellationToken)
    {
        var result = await SendOnceAsync(body, requestNumber, cancellationToken).ConfigureAwait(false);
        if (result.Outcome == SendOutcome.Unauthorized && options.TokenProvider is not null)
        {
            // ThriveStack tokens expire: the provider is asked again and gets one more try before sending pauses.
            result = await SendOnceAsync(body, requestNumber, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    private async Task<SendResult> SendOnceAsync(ReadOnlyMemory<byte> body, long requestNumber, CancellationToken cancellationToken)
    {
        string? token;
        try
        {
            token = options.TokenProvider is { } provider
                ? await provider(cancellationToken).ConfigureAwait(false)
                : options.ApiToken;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Its own timeout (a TaskCanceledException) included: a failing provider pauses sending like a refused token.
            return new SendResult(SendOutcome.Unauthorized, null, $"TokenProvider failed: {ex.GetType().Name}");
        }

        if (string.IsNullOrEmpty(token))
        {
            return new SendResult(SendOutcome.Unauthorized, null, "TokenProvider returned no token");
        }

        if (!HeaderToken.IsValid(token))
        {
            return new SendResult(SendOutcome.Unauthorized, null, HeaderToken.ProviderMessage);
        }

        var client = httpClientFactory.CreateClient(clientName);
        try
        {
            var answer = await pipeline.ExecuteAsync(
                static async (state, ct) =>
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, state.Endpoint);
                    request.Content = new ReadOnlyMemoryContent(state.Body) { Headers = { ContentType = Json } };
                    request.Options.Set(RequestNumber, state.Number);
                    if (state.AuthHeader == ThrivestackAuthHeader.ApiKey)
                    {
                        request.Headers.TryAddWithoutValidation("x-api-key", state.Token);
                    }
                    else
                    {
                        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", state.Token);
                    }

                    // Headers first, then a bounded read of the body, both within this attempt's timeout.
                    using var response = await state.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
                    return await HttpAnswer.ReadAsync(response, state.Time.GetUtcNow(), ct).ConfigureAwait(false);
                },
                new RequestState(client, options.Endpoint, body, requestNumber, token, options.AuthHeader, timeProvider),
                cancellationToken).ConfigureAwait(false);
            return AnswerClassifier.Classify(answer, options.Endpoint);
        }
        catch (TimeoutRejectedException)
        {
            return new SendResult(SendOutcome.Transient, null, $"no answer from {HostAndPort(options.Endpoint)} within {options.RequestTimeout}") { TimedOut = true };
        }
        catch (HttpRequestException ex)
        {
            return new SendResult(SendOutcome.Transient, null, NetworkError(ex, options.Endpoint));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SendResult(SendOutcome.Transient, null, $"no answer from {HostAndPort(options.Endpoint)} within {options.RequestTimeout}") { TimedOut = true };
        }
    }

    // Host and port only: the endpoint's path and query string stay out of messages.
    private static string HostAndPort(Uri endpoint) => $"{endpoint.Host}:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}";

    private static string NetworkError(HttpRequestException exception, Uri endpoint)
    {
        var detail = exception.InnerException is SocketException socket ? socket.Message : Innermost(exception).Message;
        if (endpoint.Query.Length > 1)
        {
            detail = detail.Replace(endpoint.Query, "?...", StringComparison.Ordinal);
        }

        detail = ServerText.Truncate(detail)!;
        return exception.HttpRequestError == HttpRequestError.ConnectionError
            ? $"network error: could not connect to {HostAndPort(endpoint)} (ConnectionError: {detail})"
            : $"network error with {HostAndPort(endpoint)} ({exception.HttpRequestError}: {detail})";
    }

    private static Exception Innermost(Exception exception)
    {
        while (exception.InnerException is { } inner)
        {
            exception = inner;
        }

        return exception;
    }

    private static ResiliencePipeline<HttpAnswer> BuildPipeline(ThrivestackOptions options, TimeProvider timeProvider)
    {
        var builder = new ResiliencePipelineBuilder<HttpAnswer> { TimeProvider = timeProvider };

        // The lease's deadline comes from the caller's token (DispatchCycle): no send goes on past its lease.
        if (options.MaxRequestRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpAnswer>
            {
                MaxRetryAttempts = options.MaxRequestRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = LongestQuickRetryWait,
                ShouldHandle = args => ValueTask.FromResult(IsQuickRetryable(args.Outcome, options.MaxConcurrentRequests)),

                // Never more than MaxDelay, whatever the server asked (IsQuickRetryable already left long waits to the row).
                DelayGenerator = static args => ValueTask.FromResult(
                    args.Outcome.Result?.RetryAfter is { } wait ? (TimeSpan?)(wait < LongestQuickRetryWait ? wait : LongestQuickRetryWait) : null),
            });
        }

        builder.AddTimeout(options.RequestTimeout);
        return builder.Build();
    }

    private static bool IsQuickRetryable(Outcome<HttpAnswer> outcome, int maxConcurrentRequests)
    {
        if (outcome.Exception is not null)
        {
            return outcome.Exception is HttpRequestException or TimeoutRejectedException;
        }

        var answer = outcome.Result!;
        // With several requests in flight a 429 is the dispatcher's concurrency limit at work (ConcurrencyLimiter): retrying it
        // here would hide the signal and add a request the gateway refuses again.
        var transient = answer.StatusCode is 408 or >= 500 || (answer.StatusCode == 429 && maxConcurrentRequests == 1);

        // A long Retry-After is honoured by the row's next attempt time instead of waiting here.
        return transient && (answer.RetryAfter is not { } wait || wait <= LongestQuickRetryWait);
    }

    private sealed record RequestState(HttpClient Client, Uri Endpoint, ReadOnlyMemory<byte> Body, long Number, string Token, ThrivestackAuthHeader AuthHeader, TimeProvider Time);
}
