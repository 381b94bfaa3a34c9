using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>
/// The command interceptor that puts a signup's rows into EF's command is registered only for providers that run a
/// command's statements in one transaction (PostgreSQL, in the integration suite): every command of other providers
/// passes no command interceptor of this library.
/// </summary>
public sealed class SaveCommandInterceptorTests
{
    [Fact]
    public async Task AddThrivestackIdentifyInterceptor_Sqlite_RegistersNoCommandInterceptor()
    {
        await using var database = new SqliteTestDatabase();
        await using var context = database.CreateContext();

        var interceptors = context.GetService<IEnumerable<IInterceptor>>().ToList();

        Assert.Contains(interceptors, i => i is ISaveChangesInterceptor);
        Assert.DoesNotContain(interceptors, i => i is IDbCommandInterceptor);
    }
}
