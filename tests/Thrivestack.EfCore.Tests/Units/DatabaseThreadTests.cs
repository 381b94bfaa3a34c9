using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>What the dispatcher's database threads promise: work starts there, everything else goes on elsewhere.</summary>
public sealed class DatabaseThreadTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task RunAsync_Dedicated_StartsTheWorkOnItsThreadAndTheCallerGoesOnAtOnce()
    {
        using var thread = DatabaseThread.Dedicated("db test");
        using var release = new ManualResetEventSlim();
        var ran = thread.RunAsync(() =>
        {
            // Blocks as a SQLite statement would: the caller must not be held by it.
            release.Wait(Deadline);
            return Task.FromResult((Thread.CurrentThread.Name, Thread.CurrentThread.IsThreadPoolThread));
        });

        Assert.False(ran.IsCompleted);
        release.Set();
        var (name, onPool) = await ran.WaitAsync(Deadline);
        Assert.Equal("db test", name);
        Assert.False(onPool);
    }

    [Fact]
    public async Task RunAsync_Dedicated_ContinuationsOfTheCallerDoNotRunOnTheThread()
    {
        using var thread = DatabaseThread.Dedicated("db test");
        using var release = new ManualResetEventSlim();
        var ran = thread.RunAsync(() =>
        {
            release.Wait(Deadline);
            return Task.FromResult(1);
        });

        // Attached before the work completes, and asking to run synchronously: it would run on the database thread, in the
        // middle of its queue, if the task completed inline there.
        var continuedOn = ran.ContinueWith(
            static _ => Thread.CurrentThread.Name,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        release.Set();
        Assert.NotEqual("db test", await continuedOn.WaitAsync(Deadline));
    }

    [Fact]
    public async Task RunAsync_Dedicated_WorkThatCompletesLater_CompletesTheTaskWithItsResult()
    {
        using var thread = DatabaseThread.Dedicated("db test");
        var later = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var ran = thread.RunAsync(() => later.Task);

        // The thread is free meanwhile: other work goes through while the first is still waiting.
        Assert.Equal(2, await thread.RunAsync(() => Task.FromResult(2)).WaitAsync(Deadline));
        later.SetResult(1);
        Assert.Equal(1, await ran.WaitAsync(Deadline));
    }

    [Fact]
    public async Task RunAsync_Dedicated_FailuresAndCancellationsReachTheCaller()
    {
        using var thread = DatabaseThread.Dedicated("db test");
        await Assert.ThrowsAsync<InvalidOperationException>(() => thread.RunAsync<int>(() => throw new InvalidOperationException("thrown")).WaitAsync(Deadline));
        await Assert.ThrowsAsync<TimeoutException>(() => thread.RunAsync(FaultLaterAsync).WaitAsync(Deadline));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => thread.RunAsync(() => Task.FromCanceled<int>(new CancellationToken(true))).WaitAsync(Deadline));

        static async Task FaultLaterAsync()
        {
            await Task.Yield();
            throw new TimeoutException("faulted later");
        }
    }

    [Fact]
    public async Task RunAsync_Dedicated_CarriesTheCallersAsyncLocals()
    {
        using var thread = DatabaseThread.Dedicated("db test");
        var ambient = new AsyncLocal<string> { Value = "caller's" };
        Assert.Equal("caller's", await thread.RunAsync(() => Task.FromResult(ambient.Value)).WaitAsync(Deadline));
    }

    [Fact]
    public async Task RunAsync_AfterDispose_StillRunsTheWork()
    {
        var thread = DatabaseThread.Dedicated("db test");
        thread.Dispose();
        Assert.Equal(3, await thread.RunAsync(() => Task.FromResult(3)).WaitAsync(Deadline));
    }

    [Fact]
    public async Task Dispose_WorkQueuedBefore_StillRunsOnTheThread()
    {
        var thread = DatabaseThread.Dedicated("db test");
        using var release = new ManualResetEventSlim();
        var first = thread.RunAsync(() =>
        {
            release.Wait(Deadline);
            return Task.FromResult(Thread.CurrentThread.Name);
        });
        var queued = thread.RunAsync(() => Task.FromResult(Thread.CurrentThread.Name));
        thread.Dispose();
        release.Set();
        Assert.Equal("db test", await first.WaitAsync(Deadline));
        Assert.Equal("db test", await queued.WaitAsync(Deadline));
    }

    [Fact]
    public async Task RunAsync_Pool_RunsTheWorkOnTheCallersThread()
    {
        var caller = Environment.CurrentManagedThreadId;
        Assert.Equal(caller, await DatabaseThread.Pool.RunAsync(() => Task.FromResult(Environment.CurrentManagedThreadId)));
        Assert.False(DatabaseThread.Pool.IsDedicated);
    }
}
