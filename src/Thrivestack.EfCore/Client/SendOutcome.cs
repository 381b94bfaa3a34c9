namespace Thrivestack.EfCore.Client;

/// <summary>What one request's answer means for its rows.</summary>
internal enum SendOutcome
{
    /// <summary>A 2xx whose body is a JSON object with <c>success</c> true or absent: the events are delivered.</summary>
    Delivered,

    /// <summary>400: some event is invalid; split the batch to find it.</summary>
    Rejected,

    /// <summary>413: the body is too large for the server; split it.</summary>
    TooLarge,

    /// <summary>
    /// 401 after a token refresh, 403 (with its status code), or a token that cannot be sent (a failing
    /// <c>TokenProvider</c>, control or non-ASCII characters): the token is wrong for every row; pause sending.
    /// </summary>
    Unauthorized,

    /// <summary>
    /// An answer that means every request will fail the same way until the configuration changes: a redirect (3xx),
    /// 404, 405, or a 2xx that is not ThriveStack's JSON (an HTML page, an empty body, JSON that is not an object, a body
    /// longer than <see cref="HttpAnswer.MaxBodyBytes"/>). Pause sending like
    /// <see cref="Unauthorized"/>; no row spends an attempt.
    /// </summary>
    Misconfigured,

    /// <summary>
    /// 408, 429, 5xx and other statuses, timeouts, network errors, a 2xx whose JSON broke off or whose <c>success</c> is
    /// anything but true (false, <c>"false"</c>, null): try the rows again later.
    /// </summary>
    Transient,
}
