namespace Thrivestack.EfCore.Dispatch;

/// <summary>When a send started and how many slots were held then (itself included).</summary>
internal readonly record struct SendStart(long Timestamp, int InFlight);
