namespace Thrivestack.EfCore.Testing;

/// <summary>A request the stand-in received and answered, accepted or not.</summary>
public sealed class ReceivedRequest
{
    /// <summary>The position of the request in arrival order, counted from 0 since the start or the last <see cref="ThrivestackStandIn.Reset"/>.</summary>
    public int Index { get; init; }

    /// <summary>When the request arrived.</summary>
    public DateTimeOffset ReceivedAt { get; init; }

    /// <summary>The status code of the answer; 499 when the client went away (or the stand-in stopped) before it was answered.</summary>
    public int StatusCode { get; init; }

    /// <summary>The number of elements of the body when it was a JSON array; otherwise 0.</summary>
    public int EventCount { get; init; }

    /// <summary>
    /// The size of the body: its <c>Content-Length</c>; when the length was not announced (chunked), the bytes read (at most
    /// 2,000,001), or 0 when the request was answered before its body was read.
    /// </summary>
    public int BodyBytes { get; init; }

    /// <summary>
    /// The message of the answer when the request was not accepted (a 4xx, an injected fault, a <c>success: false</c>);
    /// <see langword="null"/> when it was accepted.
    /// </summary>
    public string? Error { get; init; }

    /// <summary>
    /// The <c>user_id</c> of each event when the body passed validation and
    /// <see cref="ThrivestackStandInOptions.RecordEvents"/> is on; otherwise empty.
    /// </summary>
    public IReadOnlyList<string> UserIds { get; init; } = [];
}
