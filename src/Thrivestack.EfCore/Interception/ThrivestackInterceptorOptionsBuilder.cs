using Thrivestack.EfCore.Interception;

namespace Thrivestack.EfCore;

/// <summary>
/// Settings of the identify interceptor of one context, given to
/// <c>AddThrivestackIdentifyInterceptor(o =&gt; ...)</c>. A later call keeps what an earlier call set.
/// </summary>
public sealed class ThrivestackInterceptorOptionsBuilder
{
    internal ThrivestackInterceptorOptionsBuilder(ThrivestackIdentifyOptionsExtension extension)
    {
        Extension = extension;
    }

    internal ThrivestackIdentifyOptionsExtension Extension { get; private set; }

    /// <summary>
    /// Stamps events with <paramref name="timeProvider"/> (tests pass a fake one). By default events are stamped with
    /// the application's registered <see cref="TimeProvider"/>, else <see cref="TimeProvider.System"/>.
    /// </summary>
    /// <param name="timeProvider">The clock for event timestamps.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="timeProvider"/> is <see langword="null"/>.</exception>
    public ThrivestackInterceptorOptionsBuilder UseTimeProvider(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        Extension = Extension.WithTimeProvider(timeProvider);
        return this;
    }

    /// <summary>
    /// Says that this process only writes events and another process runs <c>AddThrivestackIdentify</c> for this
    /// context's outbox. Without it, a process that writes events but registered no dispatcher for the context logs
    /// a warning the first time it writes them, because its outbox would otherwise grow forever.
    /// </summary>
    /// <returns>The same builder, so calls can be chained.</returns>
    public ThrivestackInterceptorOptionsBuilder DispatchedElsewhere()
    {
        Extension = Extension.WithDispatchedElsewhere();
        return this;
    }
}
