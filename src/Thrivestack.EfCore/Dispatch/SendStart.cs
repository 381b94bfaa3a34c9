namespace Thrivestack.EfCore.Dispatch;

/// <summary>When a send started, how many slots were held then (itself included) and how many the limit allowed.</summary>
internal readonly record struct SendStart(long Timestamp, int InFlight, int Allowed);
