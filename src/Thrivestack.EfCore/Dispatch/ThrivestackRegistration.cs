using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>Names shared by the registration and the dispatcher of one context type.</summary>
internal static class ThrivestackRegistration
{
    public static string OptionsName<TContext>()
        where TContext : DbContext => "Thrivestack:" + typeof(TContext).FullName;
}
