using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Thrivestack.EfCore.Sample.Model;

/// <summary>
/// Lets <c>dotnet ef migrations add</c> create the context without running the sample (which would start the
/// stand-in and recreate the database). The options match Program.cs.
/// </summary>
internal sealed class DesignTimeDbContextFactory : IDesignTimeDbContextFactory<AppDbContext>
{
    public AppDbContext CreateDbContext(string[] args)
    {
        var options = new DbContextOptionsBuilder<AppDbContext>().UseSqlite(SampleDatabase.ConnectionString);
        options.AddThrivestackIdentifyInterceptor();
        return new AppDbContext(options.Options);
    }
}
