namespace Thrivestack.EfCore.Dispatch;

/// <summary>What one answer says about the number of requests in flight.</summary>
internal enum SendFeedback
{
    /// <summary>Says nothing about load (a refused token, a rejected event, a network error).</summary>
    Neutral,

    /// <summary>Accepted.</summary>
    Success,

    /// <summary>A 429, a 503 or a timeout: too many requests in flight, or too many per second.</summary>
    Overload,
}
