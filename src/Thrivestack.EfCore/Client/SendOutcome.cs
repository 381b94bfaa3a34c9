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

    /// <summary>408, 429, 5xx, timeouts, refused connections, 200 with success false: try the rows again later.</summary>
    Transient,
}
