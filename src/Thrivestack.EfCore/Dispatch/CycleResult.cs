namespace Thrivestack.EfCore.Dispatch;

/// <summary>How a dispatch cycle ended.</summary>
internal enum CycleResult
{
    Completed,
    Transient,
    Unauthorized,
}
