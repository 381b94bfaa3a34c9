namespace Thrivestack.EfCore.Dispatch;

/// <summary>How a dispatch cycle ended.</summary>
internal enum CycleResult
{
    Completed,

    /// <summary>Requests fail and none succeeds: ThriveStack looks down. Back off; no row spent an attempt.</summary>
    Transient,

    /// <summary>The token is refused (401, or 403 on every request): pause.</summary>
    Unauthorized,

    /// <summary>The endpoint answers as ThriveStack never does (3xx, 404, 405, a 2xx without its JSON): pause.</summary>
    Misconfigured,
}
