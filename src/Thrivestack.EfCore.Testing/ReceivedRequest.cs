namespace Thrivestack.EfCore.Testing;

/// <summary>A request the stand-in received and answered, accepted or not.</summary>
/// <param name="Index">The position of the request in arrival order, counted from 0 since the start or the last <see cref="ThrivestackStandIn.Reset"/>.</param>
/// <param name="ReceivedAt">When the request arrived.</param>
/// <param name="StatusCode">The status code of the answer; 499 when the client went away (or the stand-in stopped) before it was answered.</param>
/// <param name="EventCount">The number of elements of the body when it was a JSON array; otherwise 0.</param>
/// <param name="BodyBytes">
/// The size of the body: its <c>Content-Length</c>; when the length was not announced (chunked), the bytes read (at most
/// 2,000,001), or 0 when the request was answered before its body was read.
/// </param>
/// <param name="Error">
/// The message of the answer when the request was not accepted (a 4xx, an injected fault, a <c>success: false</c>);
/// <see langword="null"/> when it was accepted.
/// </param>
/// <param name="UserIds">
/// The <c>user_id</c> of each event when the body passed validation and
/// <see cref="ThrivestackStandInOptions.RecordEvents"/> is on; otherwise empty.
/// </param>
public sealed record ReceivedRequest(
    int Index,
    DateTimeOffset ReceivedAt,
    int StatusCode,
    int EventCount,
    int BodyBytes,
    string? Error,
    IReadOnlyList<string> UserIds);
