namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// What the dispatcher has seen of ThriveStack across cycles: whether its latest request succeeded. A failure counts
/// against an event only while others go through; this is the "others go through" half of that rule.
/// </summary>
internal sealed class SendEvidence
{
    /// <summary>True when the latest finished request was delivered; false after a failure, and at start.</summary>
    public bool LastRequestSucceeded { get; set; }
}
