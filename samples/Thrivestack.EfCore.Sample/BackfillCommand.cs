using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Sample.Model;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Sample;

/// <summary>
/// <c>dotnet run --project samples/Thrivestack.EfCore.Sample -- backfill</c>: an app that adopts the library with
/// users already in its database identifies them once, with the dispatcher running as it does in production.
/// </summary>
internal static class BackfillCommand
{
    private const int ExistingUsers = 1_000;

    public static async Task RunAsync(IServiceProvider services, ThrivestackStandIn? standIn, CancellationToken stopping)
    {
        await SeedExistingUsersAsync();
        Console.WriteLine($"Backfill: {ExistingUsers} users and their memberships existed before the interceptor was added.");

        // The one-off command a real app runs (or an admin endpoint, or a hosted job): a fresh context from DI.
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var result = await db.BackfillThrivestackAsync(
            new ThrivestackBackfillOptions { ChunkSize = 200 },
            new Progress<ThrivestackBackfillProgress>(p => Console.WriteLine(
                $"  {p.ProcessedUsers + p.ProcessedMemberships} of about {p.EstimatedTotal} ({p.EntityType}), {p.RowsPerSecond:F0} rows/s")),
            stopping);
        Console.WriteLine($"  Enqueued {result.UsersEnqueued} user and {result.MembershipsEnqueued} membership events in {result.Elapsed.TotalSeconds:F1} s; completed: {result.Completed}.");

        var expected = (int)(result.UsersEnqueued + result.MembershipsEnqueued);
        if (standIn is not null)
        {
            try
            {
                await standIn.WaitForEventsAsync(expected, TimeSpan.FromSeconds(60), stopping);
            }
            catch (TimeoutException e)
            {
                throw new StoryFailedException(e.Message, e);
            }

            Console.WriteLine($"  The stand-in received {standIn.AcceptedEventCount} identify events in {standIn.AcceptedRequestCount} requests.");
        }

        var again = await db.BackfillThrivestackAsync(cancellationToken: stopping);
        Console.WriteLine($"  Run again: {again.UsersEnqueued + again.MembershipsEnqueued} events enqueued (the checkpoint says it is complete).");
    }

    // Rows written without the interceptor, as they were before the app adopted the library.
    private static async Task SeedExistingUsersAsync()
    {
        var options = new DbContextOptionsBuilder<AppDbContext>().UseSqlite(SampleDatabase.ConnectionString).Options;
        await using var db = new AppDbContext(options);
        var workspace = new Workspace { Name = "Existing customers" };
        db.Workspaces.Add(workspace);
        for (var i = 0; i < ExistingUsers; i++)
        {
            var user = new AppUser { Id = Guid.CreateVersion7(), Email = $"existing{i}@example.com", FirstName = "Existing", LastName = $"User {i}" };
            db.Users.Add(user);
            if (i % 4 == 0)
            {
                workspace.Members.Add(new WorkspaceMember { UserId = user.Id });
            }
        }

        await db.SaveChangesAsync();
    }
}
