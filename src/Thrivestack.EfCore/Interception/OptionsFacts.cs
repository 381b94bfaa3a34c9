using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Interception;

/// <summary>What the interceptor needs from a context's options. Options are immutable, so this is too.</summary>
internal sealed class OptionsFacts
{
    /// <summary>
    /// Context types already warned about, per application container. <c>AddDbContext</c> builds options per scope, so
    /// the container's scope factory (one per root container) keys the warning, not the options instance.
    /// </summary>
    private static readonly ConditionalWeakTable<object, ConcurrentDictionary<Type, byte>> Warned = new();

    private int undispatchedWarned;

    private OptionsFacts(IDbContextOptions options, TimeProvider clock, OutboxSignal? signal, bool configuresSaveInterceptor, bool configuresTransactionInterceptor, ILoggerFactory? undispatchedLogs)
    {
        Options = options;
        Clock = clock;
        Signal = signal;
        ConfiguresSaveInterceptor = configuresSaveInterceptor;
        ConfiguresTransactionInterceptor = configuresTransactionInterceptor;
        UndispatchedLogs = undispatchedLogs;
    }

    public IDbContextOptions Options { get; }

    /// <summary>The clock that stamps events: the interceptor's own, else the application's, else the system's.</summary>
    public TimeProvider Clock { get; }

    /// <summary>The dispatchers' nudge in the application's services, when a dispatcher is registered.</summary>
    public OutboxSignal? Signal { get; }

    /// <summary>A save interceptor was added with <c>AddInterceptors</c>; EF runs those after this library's.</summary>
    public bool ConfiguresSaveInterceptor { get; }

    /// <summary>An interceptor added with <c>AddInterceptors</c> acts before commits (<see cref="CommitInterception"/>); EF runs those after this library's.</summary>
    public bool ConfiguresTransactionInterceptor { get; }

    /// <summary>Set when the application's services register no dispatcher for this context type and the user did not say why.</summary>
    private ILoggerFactory? UndispatchedLogs { get; }

    /// <summary>
    /// The facts of one options instance, read once and kept on the options' own extension (options are immutable):
    /// contexts of a factory, a pool or <c>new</c> with shared options read them once; each context also keeps them in its
    /// <see cref="SaveState"/>.
    /// </summary>
    public static OptionsFacts For(IDbContextOptions options)
    {
        var extension = options.FindExtension<ThrivestackIdentifyOptionsExtension>();
        if (extension?.Facts is { } known && ReferenceEquals(known.Options, options))
        {
            return known;
        }

        var facts = Find(options);
        if (extension is not null)
        {
            extension.Facts = facts;
        }

        return facts;
    }

    /// <summary>The facts of the context's options, read once per context (kept in its save state when it has one).</summary>
    public static OptionsFacts Of(DbContext context) =>
        SaveState.Of(context) is { } state ? Of(context, state) : For(context.GetService<IDbContextOptions>());

    /// <summary>
    /// The facts of the context's options, kept beside the context (its options never change) and beside the
    /// options instance, which contexts from a pool, a factory or <c>new</c> with shared options have in common.
    /// </summary>
    public static OptionsFacts Of(DbContext context, SaveState state) =>
        state.Facts ??= For(context.GetService<IDbContextOptions>());

    /// <summary>Warns once per context type and application container, when events are first written that no dispatcher in this process ships.</summary>
    public void WarnIfUndispatched()
    {
        if (UndispatchedLogs is { } logs && Interlocked.Exchange(ref undispatchedWarned, 1) == 0)
        {
            var application = Options.FindExtension<CoreOptionsExtension>()!.ApplicationServiceProvider!;
            var container = application.GetService<IServiceScopeFactory>() ?? (object)application;
            var contextType = ((DbContextOptions)Options).ContextType;
            if (Warned.GetValue(container, static _ => new ConcurrentDictionary<Type, byte>()).TryAdd(contextType, 0))
            {
                Log.OutboxNotDispatched(logs.CreateLogger<ThrivestackIdentifyInterceptor>(), contextType.Name);
            }
        }
    }

    private static OptionsFacts Find(IDbContextOptions options)
    {
        var core = options.FindExtension<CoreOptionsExtension>();
        var application = core?.ApplicationServiceProvider;
        var extension = options.FindExtension<ThrivestackIdentifyOptionsExtension>();
        var clock = extension?.TimeProvider
            ?? application?.GetService<TimeProvider>()
            ?? TimeProvider.System;
        var configures = core?.Interceptors?.Any(i => i is ISaveChangesInterceptor) == true;
        var configuresTransaction = core?.Interceptors?.Any(CommitInterception.InterceptsCommitting) == true;
        ILoggerFactory? undispatched = null;
        if (application is not null && extension is { DispatchedElsewhere: false } && !IsDispatched(application, options))
        {
            undispatched = core?.LoggerFactory ?? application.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
        }

        return new OptionsFacts(options, clock, application?.GetService<OutboxSignal>(), configures, configuresTransaction, undispatched);
    }

    /// <summary>
    /// AddThrivestackIdentify registers a status per dispatched context type. Only the application's own container is
    /// asked (<see cref="IServiceProviderIsService"/>); without one nothing is known, and nothing is claimed.
    /// </summary>
    private static bool IsDispatched(IServiceProvider application, IDbContextOptions options) =>
        options is not DbContextOptions { ContextType: var contextType } || IsDispatched(application, contextType);

    /// <summary>
    /// Whether <paramref name="application"/> registered a dispatcher for <paramref name="contextType"/> (true when that cannot
    /// be known: then nothing is claimed). Also the backfill's check (<c>BackfillDispatcherCheck</c>).
    /// </summary>
    internal static bool IsDispatched(IServiceProvider application, Type contextType) =>
        contextType == typeof(DbContext)
        || application.GetService<IServiceProviderIsService>() is not { } isService
        || isService.IsService(StatusTypes.GetOrAdd(contextType, static t => typeof(DispatcherStatus<>).MakeGenericType(t)));

    /// <summary><c>AddDbContext</c> builds options per scope: the generic type is made once per context type, not per request.</summary>
    private static readonly ConcurrentDictionary<Type, Type> StatusTypes = new();
}
