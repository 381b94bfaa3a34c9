namespace Thrivestack.EfCore.Client;

/// <summary>What one request's answer means for its rows.</summary>
internal enum SendOutcome
{
    /// <summary>2xx with success: the events are delivered.</summary>
    Delivered,

    /// <summary>400: some event is invalid; split the batch to find it.</summary>
    Rejected,

    /// <summary>413: the body is too large for the server; split it.</summary>
    TooLarge,

    /// <summary>401/403 after a token refresh: the token is wrong for every row; pause sending.</summary>
    Unauthorized,

    /// <summary>
    /// An answer that means every request will fail the same way until the configuration changes: a redirect (3xx),
    /// 404, 405, or a 2xx that is not ThriveStack's JSON (an HTML page, an empty body). Pause sending like
    /// <see cref="Unauthorized"/>; no row spends an attempt.
    /// </summary>
    Misconfigured,

    /// <summary>408, 429, 5xx, timeouts, refused connections, 200 with success false: try the rows again later.</summary>
    Transient,
}
