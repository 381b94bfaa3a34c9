using System.Collections.Concurrent;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// Where the dispatcher runs database work that blocks its thread: a thread of its own when the provider's asynchronous
/// calls run synchronously (Microsoft.Data.Sqlite: every statement, and a write waiting for SQLite's lock sleeps in the
/// busy handler), the thread pool otherwise. On a small machine such work on the pool holds up whatever is queued behind
/// it: the answers of the requests in flight (measured on 2 cores: 107-111 ms for a 100 ms latency, 103 ms with the pool
/// not starved) and the application's own requests. The work's continuations, when it does complete asynchronously, and
/// the caller's continuations run on the thread pool, never here: this thread only starts work items.
/// </summary>
internal sealed class DatabaseThread : IDisposable
{
    private readonly BlockingCollection<WorkItem>? queue;

    private DatabaseThread(string? name)
    {
        if (name is null)
        {
            return;
        }

        queue = [];
        new Thread(Run) { IsBackground = true, Name = name }.Start();
    }

    /// <summary>No thread of its own: work runs on the caller's thread (the provider's asynchronous calls do not block).</summary>
    public static DatabaseThread Pool { get; } = new(null);

    /// <summary>A thread of its own, named as debuggers and dumps show it; ends when disposed.</summary>
    public static DatabaseThread Dedicated(string name) => new(name);

    /// <summary>Whether work runs on a thread of its own.</summary>
    public bool IsDedicated => queue is not null;

    /// <summary>
    /// Runs <paramref name="work"/> on the dedicated thread (the caller goes on at once), or on the caller's thread when
    /// there is none; the task completes with the work.
    /// </summary>
    public Task<T> RunAsync<T>(Func<Task<T>> work)
    {
        if (queue is null)
        {
            return work();
        }

        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            queue.Add(new WorkItem(ExecutionContext.Capture(), () => Start(work, completion)));
        }
        catch (InvalidOperationException)
        {
            // Disposed (the dispatcher stopped): what is still asked for runs here rather than not at all.
            return work();
        }

        return completion.Task;
    }

    /// <inheritdoc cref="RunAsync{T}(Func{Task{T}})"/>
    public Task RunAsync(Func<Task> work) => queue is null ? work() : RunAsync(async () =>
    {
        await work().ConfigureAwait(false);
        return true;
    });

    /// <summary>Lets the thread end once the work already queued has started.</summary>
    public void Dispose() => queue?.CompleteAdding();

    private static void Start<T>(Func<Task<T>> work, TaskCompletionSource<T> completion)
    {
        Task<T> task;
        try
        {
            task = work();
        }
        catch (Exception ex)
        {
            completion.SetException(ex);
            return;
        }

        if (task.IsCompleted)
        {
            completion.TrySetFromTask(task);
        }
        else
        {
            task.ContinueWith(
                static (t, state) => ((TaskCompletionSource<T>)state!).TrySetFromTask(t),
                completion,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    private void Run()
    {
        foreach (var item in queue!.GetConsumingEnumerable())
        {
            // The caller's ambient state (its Activity, logging scopes) goes with the work, as Task.Run would carry it.
            if (item.Context is { } context)
            {
                ExecutionContext.Run(context, static state => ((Action)state!)(), item.Start);
            }
            else
            {
                item.Start();
            }
        }
    }

    private sealed record WorkItem(ExecutionContext? Context, Action Start);
}
