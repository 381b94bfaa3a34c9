using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Thrivestack.EfCore.Diagnostics;

namespace Thrivestack.EfCore.Client;

/// <summary>
/// Posts one batch to <c>/api/identify</c> through a Polly pipeline (per-attempt timeout, a few quick retries
/// with exponential backoff and jitter for 408/429/5xx and network errors, <c>Retry-After</c> honoured) and
/// classifies the answer. The token goes only into the request header, never into logs or messages.
/// </summary>
internal sealed class ThrivestackClient
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    // A Retry-After longer than this is honoured by the row's next attempt time, not by holding the lease.
    private static readonly TimeSpan LongestQuickRetryWait = TimeSpan.FromSeconds(5);

    private readonly IHttpClientFactory httpClientFactory;
    private readonly string clientName;
    private readonly ThrivestackOptions options;
    private readonly TimeProvider timeProvider;
    private readonly ThrivestackMetrics metrics;
    private readonly ResiliencePipeline<HttpResponseMessage> pipeline;

    public ThrivestackClient(IHttpClientFactory httpClientFactory, string clientName, ThrivestackOptions options, TimeProvider timeProvider, ThrivestackMetrics metrics)
    {
        this.httpClientFactory = httpClientFactory;
        this.clientName = clientName;
        this.options = options;
        this.timeProvider = timeProvider;
        this.metrics = metrics;
        pipeline = BuildPipeline(options, timeProvider);
    }

    public async Task<SendResult> SendAsync(ReadOnlyMemory<byte> body, int eventCount, CancellationToken cancellationToken)
    {
        using var activity = ThrivestackActivitySource.Instance.StartActivity("thrivestack.identify.send", ActivityKind.Client);
        activity?.SetTag("thrivestack.batch.events", eventCount);
        activity?.SetTag("thrivestack.batch.bytes", body.Length);
        var started = timeProvider.GetTimestamp();
        var result = await SendWithTokenRefreshAsync(body, cancellationToken).ConfigureAwait(false);
        metrics.RecordRequest(eventCount, body.Length, timeProvider.GetElapsedTime(started), result.Outcome);
        activity?.SetTag("http.response.status_code", result.StatusCode);
        activity?.SetTag("thrivestack.outcome", result.Outcome.ToString());
        if (result.Outcome != SendOutcome.Delivered)
        {
            activity?.SetStatus(ActivityStatusCode.Error, result.Outcome.ToString());
        }

        return result;
    }

    private async Task<SendResult> SendWithTokenRefreshAsync(ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var result = await SendOnceAsync(body, cancellationToken).ConfigureAwait(false);
        if (result.Outcome == SendOutcome.Unauthorized && options.TokenProvider is not null)
        {
            // ThriveStack tokens expire: the provider is asked again and gets one more try before sending pauses.
            result = await SendOnceAsync(body, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    private async Task<SendResult> SendOnceAsync(ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        string token;
        try
        {
            token = options.TokenProvider is { } provider
                ? await provider(cancellationToken).ConfigureAwait(false)
                : options.ApiToken!;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new SendResult(SendOutcome.Unauthorized, null, $"TokenProvider failed: {ex.GetType().Name}");
        }

        var client = httpClientFactory.CreateClient(clientName);
        try
        {
            using var response = await pipeline.ExecuteAsync(
                static async (state, ct) =>
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, state.Endpoint);
                    request.Content = new ReadOnlyMemoryContent(state.Body) { Headers = { ContentType = Json } };
                    if (state.AuthHeader == ThrivestackAuthHeader.ApiKey)
                    {
                        request.Headers.TryAddWithoutValidation("x-api-key", state.Token);
                    }
                    else
                    {
                        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", state.Token);
                    }

                    return await state.Client.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
                },
                new RequestState(client, options.Endpoint, body, token, options.AuthHeader),
                cancellationToken).ConfigureAwait(false);
            return await ClassifyAsync(response, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException)
        {
            return new SendResult(SendOutcome.Transient, null, $"no answer within {options.RequestTimeout}");
        }
        catch (HttpRequestException ex)
        {
            return new SendResult(SendOutcome.Transient, null, $"network error: {ex.HttpRequestError}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SendResult(SendOutcome.Transient, null, $"no answer within {options.RequestTimeout}");
        }
    }

    private async Task<SendResult> ClassifyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var answer = await ReadAnswerAsync(response, cancellationToken).ConfigureAwait(false);
        var message = answer?.Message ?? response.ReasonPhrase;
        if (response.IsSuccessStatusCode)
        {
            return answer?.Success == false
                ? new SendResult(SendOutcome.Transient, status, $"success: false ({message})")
                : new SendResult(SendOutcome.Delivered, status, message, null, answer?.ResponseId ?? answer?.EventId, answer?.Warnings);
        }

        return response.StatusCode switch
        {
            HttpStatusCode.BadRequest => new SendResult(SendOutcome.Rejected, status, message),
            HttpStatusCode.RequestEntityTooLarge => new SendResult(SendOutcome.TooLarge, status, message),
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new SendResult(SendOutcome.Unauthorized, status, message),
            _ => new SendResult(SendOutcome.Transient, status, message, RetryAfter(response)),
        };
    }

    private static async Task<IdentifyResponse?> ReadAnswerAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                return await JsonSerializer.DeserializeAsync(stream, ThrivestackJsonContext.Default.IdentifyResponse, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        var header = response.Headers.RetryAfter;
        var wait = header?.Delta ?? (header?.Date is { } date ? date - timeProvider.GetUtcNow() : null);
        return wait is { } w && w > TimeSpan.Zero ? w : wait is null ? null : TimeSpan.Zero;
    }

    private static ResiliencePipeline<HttpResponseMessage> BuildPipeline(ThrivestackOptions options, TimeProvider timeProvider)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = timeProvider };

        // Never hold rows past their lease: give up before it ends, the rows are then retried later.
        builder.AddTimeout(options.LeaseDuration * 0.9);
        if (options.MaxRequestRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRequestRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = LongestQuickRetryWait,
                ShouldHandle = static args => ValueTask.FromResult(IsQuickRetryable(args.Outcome)),
                DelayGenerator = static args =>
                    ValueTask.FromResult(args.Outcome.Result?.Headers.RetryAfter?.Delta is { } wait ? wait : (TimeSpan?)null),
            });
        }

        builder.AddTimeout(options.RequestTimeout);
        return builder.Build();
    }

    private static bool IsQuickRetryable(Outcome<HttpResponseMessage> outcome)
    {
        if (outcome.Exception is not null)
        {
            return outcome.Exception is HttpRequestException or TimeoutRejectedException;
        }

        var response = outcome.Result!;
        var status = (int)response.StatusCode;
        var transient = status is 408 or 429 or >= 500;
        if (!transient)
        {
            return false;
        }

        // A long Retry-After is honoured by the row's next attempt time instead of waiting here.
        var header = response.Headers.RetryAfter;
        return header?.Delta is not { } delta || delta <= LongestQuickRetryWait;
    }

    private sealed record RequestState(HttpClient Client, Uri Endpoint, ReadOnlyMemory<byte> Body, string Token, ThrivestackAuthHeader AuthHeader);
}
