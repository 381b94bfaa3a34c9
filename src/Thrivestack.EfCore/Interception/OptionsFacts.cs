using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Interception;

/// <summary>What the interceptor needs from a context's options. Options are immutable, so this is too.</summary>
internal sealed class OptionsFacts
{
    private OptionsFacts(IDbContextOptions options, TimeProvider clock, OutboxSignal? signal, bool configuresSaveInterceptor)
    {
        Options = options;
        Clock = clock;
        Signal = signal;
        ConfiguresSaveInterceptor = configuresSaveInterceptor;
    }

    public IDbContextOptions Options { get; }

    /// <summary>The clock that stamps events: the interceptor's own, else the application's, else the system's.</summary>
    public TimeProvider Clock { get; }

    /// <summary>The dispatchers' nudge in the application's services, when a dispatcher is registered.</summary>
    public OutboxSignal? Signal { get; }

    /// <summary>A save interceptor was added with <c>AddInterceptors</c>; EF runs those after this library's.</summary>
    public bool ConfiguresSaveInterceptor { get; }

    /// <summary>Facts per options instance; an entry lives as long as its options (no scope is kept alive by it).</summary>
    private static readonly ConditionalWeakTable<IDbContextOptions, OptionsFacts> Known = new();

    public static OptionsFacts For(IDbContextOptions options) => Known.GetValue(options, Find);

    private static OptionsFacts Find(IDbContextOptions options)
    {
        var core = options.FindExtension<CoreOptionsExtension>();
        var application = core?.ApplicationServiceProvider;
        var clock = options.FindExtension<ThrivestackIdentifyOptionsExtension>()?.TimeProvider
            ?? application?.GetService<TimeProvider>()
            ?? TimeProvider.System;
        var configures = core?.Interceptors?.Any(i => i is ISaveChangesInterceptor) == true;
        return new OptionsFacts(options, clock, application?.GetService<OutboxSignal>(), configures);
    }
}
