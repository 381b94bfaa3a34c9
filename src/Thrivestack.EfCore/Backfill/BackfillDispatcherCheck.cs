using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Thrivestack.EfCore.Interception;

namespace Thrivestack.EfCore.Backfill;

/// <summary>
/// Whether a backfill's events have no dispatcher in this process: the rule of the interceptor's warning 304
/// (<see cref="OptionsFacts"/>). Only the application's own container is asked; a context made without one (no
/// dependency injection) knows nothing, and nothing is claimed. <c>DispatchedElsewhere()</c> says another process ships.
/// </summary>
internal static class BackfillDispatcherCheck
{
    public static bool IsUndispatched(DbContext context)
    {
        var options = context.GetService<IDbContextOptions>();
        return options.FindExtension<CoreOptionsExtension>()?.ApplicationServiceProvider is { } application
            && options.FindExtension<ThrivestackIdentifyOptionsExtension>() is not { DispatchedElsewhere: true }
            && !OptionsFacts.IsDispatched(application, context.GetType());
    }
}
