using System.Globalization;
using Microsoft.Extensions.Options;

namespace Thrivestack.EfCore.Client;

/// <summary>
/// Checks the options when the host starts; each message names the option, its value and the fix. Messages are single
/// sentences without a final period or a semicolon: <see cref="OptionsValidationException.Message"/> joins them with "; ".
/// </summary>
internal sealed class ThrivestackOptionsValidator : IValidateOptions<ThrivestackOptions>
{
    /// <summary>
    /// The endpoint, quoted, as a message may show it: without user info, query or fragment, where a secret could sit (an
    /// endpoint copied with <c>?api_key=...</c>); the message says when something was left out.
    /// </summary>
    internal static string Shown(Uri? endpoint)
    {
        if (endpoint is null)
        {
            return "''";
        }

        var text = EndpointText.Of(endpoint);
        var cut = endpoint.IsAbsoluteUri
            ? endpoint.UserInfo.Length > 0 || endpoint.Query.Length > 0 || endpoint.Fragment.Length > 0
            : text.Length < endpoint.OriginalString.Length;
        return cut ? $"'{text}' (its user info, query and fragment not shown)" : $"'{text}'";
    }

    public ValidateOptionsResult Validate(string? name, ThrivestackOptions options)
    {
        var errors = new List<string>();
        // Options are named "Thrivestack:<context type>": say "the ThriveStack options of AppDbContext", not a key that is not in configuration.
        var context = name is { Length: > 0 } ? name[(name.LastIndexOfAny([':', '.']) + 1)..] : null;
        var prefix = context is null ? "ThrivestackOptions" : $"ThrivestackOptions of {context}";
        void Fail(string message) => errors.Add($"{prefix}: {message}");

        if (options.Endpoint is null || !options.Endpoint.IsAbsoluteUri)
        {
            Fail($"Endpoint {Shown(options.Endpoint)} must be an absolute https URI, such as https://api.app.thrivestack.ai/api/identify");
        }
        else if (options.Endpoint.Scheme == Uri.UriSchemeHttp && !options.Endpoint.IsLoopback)
        {
            Fail($"Endpoint {Shown(options.Endpoint)} uses plain http to a host that is not loopback, so the token would travel unencrypted: use https");
        }
        else if (options.Endpoint.Scheme != Uri.UriSchemeHttps && options.Endpoint.Scheme != Uri.UriSchemeHttp)
        {
            Fail($"Endpoint {Shown(options.Endpoint)} must use https");
        }

        if (options.SendingEnabled && options.TokenProvider is null && string.IsNullOrWhiteSpace(options.ApiToken))
        {
            Fail("ApiToken is missing: set Thrivestack:ApiToken (for example from a secret store), or TokenProvider for rotating tokens, or Thrivestack:SendingEnabled to false to run without a ThriveStack account (events stay in the outbox)");
        }
        else if (options.TokenProvider is null && options.ApiToken is not null && !HeaderToken.IsValid(options.ApiToken))
        {
            // Never the token itself: only what is wrong with it.
            Fail("ApiToken contains control or non-ASCII characters (such as a line break at its end), so it cannot be sent as an HTTP header value: remove them from Thrivestack:ApiToken");
        }

        if (options.MaxEventsPerBatch is < 1 or > ThrivestackLimits.MaxEventsPerRequest)
        {
            Fail($"MaxEventsPerBatch is {Format(options.MaxEventsPerBatch)}, but ThriveStack accepts 1 to 1,000 events per request");
        }

        if (options.MaxBatchBytes is < 1024 or > ThrivestackLimits.MaxRequestBytes)
        {
            Fail($"MaxBatchBytes is {Format(options.MaxBatchBytes)}, but it must be between 1,024 and 2,000,000 (ThriveStack's 2 MB limit)");
        }

        Positive(options.PollInterval, nameof(options.PollInterval));
        Positive(options.LeaseDuration, nameof(options.LeaseDuration));
        Positive(options.RequestTimeout, nameof(options.RequestTimeout));
        Positive(options.RetryBaseDelay, nameof(options.RetryBaseDelay));
        if (options.LeaseDuration > TimeSpan.Zero && options.RequestTimeout > TimeSpan.Zero && options.MaxRequestRetries is >= 0 and <= 10
            && ThrivestackClient.LongestSend(options) is var send && send > options.LeaseDuration * 0.9)
        {
            var needed = TimeSpan.FromSeconds(Math.Ceiling(send.TotalSeconds / 0.9));
            Fail($"LeaseDuration ({options.LeaseDuration}) is too short for one request with its quick retries: RequestTimeout ({options.RequestTimeout}) for each of {Format(options.MaxRequestRetries + 1)} attempt(s) (MaxRequestRetries {Format(options.MaxRequestRetries)}) and the waits between them take up to {send}, which must fit in nine tenths of the lease, or a slow request would be cut off when its lease ends: make LeaseDuration at least {needed}, or lower RequestTimeout or MaxRequestRetries");
        }

        if (options.MaxConcurrentRequests is < 1 or > 64)
        {
            Fail($"MaxConcurrentRequests is {Format(options.MaxConcurrentRequests)}, but it must be between 1 and 64 (1 sends one request at a time)");
        }

        if (options.RetryMaxDelay < options.RetryBaseDelay)
        {
            Fail($"RetryMaxDelay ({options.RetryMaxDelay}) is shorter than RetryBaseDelay ({options.RetryBaseDelay}), but it must be at least as long");
        }

        if (options.MaxAttempts < 1)
        {
            Fail($"MaxAttempts is {Format(options.MaxAttempts)}, but it must be at least 1");
        }

        if (options.MaxRequestRetries is < 0 or > 10)
        {
            Fail($"MaxRequestRetries is {Format(options.MaxRequestRetries)}, but it must be between 0 and 10");
        }

        if (options.DeliveredRetention < TimeSpan.Zero)
        {
            Fail($"DeliveredRetention is {options.DeliveredRetention}, but it cannot be negative");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);

        void Positive(TimeSpan value, string option)
        {
            if (value <= TimeSpan.Zero)
            {
                Fail($"{option} is {value}, but it must be positive");
            }
        }
    }

    private static string Format(int value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
