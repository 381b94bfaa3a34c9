using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>
/// An application interceptor, added after this library's, that holds a save in <c>SavingChanges</c> until released: the
/// library has begun counting the save as in progress by then, and EF has not yet begun its transaction.
/// </summary>
internal sealed class HeldSave : SaveChangesInterceptor
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override async ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        Entered.TrySetResult();
        await Release.Task;
        return result;
    }

    /// <summary>Polls <paramref name="condition"/> every 10 ms until it holds or <see cref="Deadline"/> passed (nothing signals a waiter's arrival).</summary>
    public static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
    }
}
