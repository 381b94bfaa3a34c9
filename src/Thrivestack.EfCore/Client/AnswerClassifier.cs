using System.Globalization;
using System.Text.Json;

namespace Thrivestack.EfCore.Client;

/// <summary>Turns one HTTP answer into a <see cref="SendResult"/>; the rule below is the README's failure table.</summary>
internal static class AnswerClassifier
{
    private const string NotThrivestack = "is not ThriveStack's answer: a proxy or a wrong Endpoint answered";

    // Only ThriveStack's answer proves delivery:
    //   Delivered     a 2xx whose whole body (at most 65,536 bytes) is a JSON object whose "success" is the JSON literal true
    //                 or absent ({ success, response_id, message } or the newer { success, eventId, warnings }).
    //   Transient     a 2xx whose body starts a JSON object but broke off or does not parse (truncated), or whose "success"
    //                 is anything but true or absent: false, "false", "true" (a string), null, a number. Not delivered.
    //   Misconfigured a 2xx whose body is empty, is not JSON (an HTML page, text), is JSON but not an object, or is longer
    //                 than 65,536 bytes: every request would fail the same way. Also 3xx (never followed), 404 and 405.
    //   Unauthorized  401 (after one TokenProvider refresh) and 403, with the status code.
    //   Rejected 400; TooLarge 413; Transient with the capped Retry-After: 408, 429, 5xx and any other status.
    public static SendResult Classify(HttpAnswer answer, Uri endpoint)
    {
        var status = answer.StatusCode;
        if (status is >= 200 and < 300)
        {
            return ClassifySuccess(answer);
        }

        var message = ErrorMessage(answer);
        return status switch
        {
            >= 300 and < 400 => new SendResult(
                SendOutcome.Misconfigured,
                status,
                $"redirect to '{answer.Location ?? "(no Location)"}' not followed: the token is only sent to the configured Endpoint; set Endpoint to the address ThriveStack names"),
            404 or 405 => new SendResult(
                SendOutcome.Misconfigured,
                status,
                $"{message}: {endpoint.Authority}{endpoint.AbsolutePath} does not take identify requests; check Endpoint"),
            400 => new SendResult(SendOutcome.Rejected, status, message),
            413 => new SendResult(SendOutcome.TooLarge, status, message),
            401 or 403 => new SendResult(SendOutcome.Unauthorized, status, message),
            _ => new SendResult(SendOutcome.Transient, status, message, answer.RetryAfter),
        };
    }

    private static SendResult ClassifySuccess(HttpAnswer answer)
    {
        var status = answer.StatusCode;
        var body = SkipBom(answer.Body.Span).Trim(" \t\r\n"u8);
        if (answer.BodyState == HttpAnswerBody.TooLong)
        {
            return new SendResult(SendOutcome.Misconfigured, status, $"a 2xx answer longer than {HttpAnswer.MaxBodyBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes {NotThrivestack}");
        }

        if (body.IsEmpty && answer.BodyState == HttpAnswerBody.Complete)
        {
            return new SendResult(SendOutcome.Misconfigured, status, $"a 2xx answer with an empty body {NotThrivestack}");
        }

        JsonDocument document;
        try
        {
            document = answer.BodyState == HttpAnswerBody.Complete
                ? JsonDocument.Parse(WithoutBom(answer.Body))
                : throw new JsonException("The body broke off.");
        }
        catch (JsonException)
        {
            return (!body.IsEmpty && body[0] == (byte)'{') || answer.BodyState == HttpAnswerBody.BrokenOff
                ? new SendResult(SendOutcome.Transient, status, "the answer is truncated or not valid JSON; the events are sent again", answer.RetryAfter)
                : new SendResult(SendOutcome.Misconfigured, status, $"a 2xx answer that is not JSON ({answer.ContentType ?? "no Content-Type"}) {NotThrivestack}");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return new SendResult(SendOutcome.Misconfigured, status, $"a 2xx answer whose JSON is not an object {NotThrivestack}");
            }

            var response = IdentifyResponse.Read(document.RootElement);
            return response.Success switch
            {
                JsonValueKind.True or JsonValueKind.Undefined =>
                    new SendResult(SendOutcome.Delivered, status, response.Message, null, response.ResponseId, response.Warnings),
                JsonValueKind.False =>
                    new SendResult(SendOutcome.Transient, status, $"success: false{Detail(response.Message)}", answer.RetryAfter),
                _ => new SendResult(SendOutcome.Transient, status, $"success: {response.SuccessText}, not true{Detail(response.Message)}", answer.RetryAfter),
            };
        }
    }

    private static string ErrorMessage(HttpAnswer answer)
    {
        if (answer.BodyState == HttpAnswerBody.Complete && SkipBom(answer.Body.Span).TrimStart(" \t\r\n"u8) is [(byte)'{', ..])
        {
            try
            {
                using var document = JsonDocument.Parse(WithoutBom(answer.Body));
                if (IdentifyResponse.Read(document.RootElement).Message is { } message)
                {
                    return message;
                }
            }
            catch (JsonException)
            {
            }
        }

        return answer.ReasonPhrase ?? "no reason given";
    }

    private static string Detail(string? message) => message is null ? string.Empty : $" ({message})";

    private static ReadOnlyMemory<byte> WithoutBom(ReadOnlyMemory<byte> body) => body.Span.StartsWith("\uFEFF"u8) ? body[3..] : body;

    private static ReadOnlySpan<byte> SkipBom(ReadOnlySpan<byte> body) => body.StartsWith("\uFEFF"u8) ? body[3..] : body;
}
