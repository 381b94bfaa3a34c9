using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Mapping;

/// <summary>Where the runtime reads the mapping: the runtime model, whether or not the interceptor's conventions ran.</summary>
public sealed class ModelMapTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void For_ContextWithOrWithoutTheInterceptor_KnowsUsersTraitsAndMemberships(bool interceptor)
    {
        using var connection = new SqliteConnection("Data Source=:memory:");
        var options = new DbContextOptionsBuilder<TestDbContext>().UseSqlite(connection);
        if (interceptor)
        {
            options.AddThrivestackIdentifyInterceptor();
        }

        using var context = new TestDbContext(options.Options);

        var map = ModelMap.For(context.Model);

        var user = map.Users[context.Model.FindEntityType(typeof(AppUser))!];
        Assert.Equal("Id", user.UserId.Property.Name);
        Assert.Equal(["email", ThrivestackTraits.FirstName, ThrivestackTraits.LastName, ThrivestackTraits.Phone, "age", "verified", ThrivestackTraits.ActiveAt, ThrivestackTraits.City, "plan"], user.Traits.Select(t => t.Key));
        Assert.Equal("Address", Assert.Single(user.Traits, t => t.IsOwned).Navigations.Single().Name);
        var membership = map.Memberships[context.Model.FindEntityType(typeof(WorkspaceMember))!];
        Assert.Equal(("UserId", "WorkspaceId"), (membership.UserId.Property.Name, membership.GroupId.Property.Name));
        Assert.NotNull(map.Outbox);
    }
}
