namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// When a send started and what the limiter saw then: the slots held (lanes with work, a measure of demand), the requests
/// actually in flight, itself included (what a gateway counts), and the limit.
/// </summary>
internal readonly record struct SendStart(long Timestamp, int Slots, int Sending, int Allowed);
