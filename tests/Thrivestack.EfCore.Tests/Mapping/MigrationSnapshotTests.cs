using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Mapping;

/// <summary>
/// What <c>dotnet ef migrations add</c> sees, run in-process with EF's design-time services: the mapping
/// (ToThrivestackUser, HasTrait, ToThrivestackMembership) never reaches a migration snapshot.
/// </summary>
public sealed class MigrationSnapshotTests
{
    [Fact]
    public void SnapshotCode_HasTraitAndMembershipAdded_IsUnchangedAndNeedsNoOperation()
    {
        using var before = new DesignTimeContext(m => m.Entity<AppUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email"));
        using var after = new DesignTimeContext(m =>
        {
            m.Entity<AppUser>().ToThrivestackUser(u => u.Id)
                .HasTrait(u => u.Email, "email")
                .HasTrait(u => u.FirstName, ThrivestackTraits.FirstName)
                .HasTrait(u => u.Address!.City, ThrivestackTraits.City);
            m.Entity<WorkspaceMember>().ToThrivestackMembership(w => w.UserId, w => w.WorkspaceId);
        });

        Assert.Equal(before.SnapshotCode(), after.SnapshotCode());
        Assert.Empty(after.Differences(before));
    }

    [Fact]
    public void SnapshotCode_MappedModel_KeepsTheOutboxButNoMappingAnnotation()
    {
        using var mapped = new DesignTimeContext(m =>
        {
            m.Entity<AppUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");
            m.Entity<WorkspaceMember>().ToThrivestackMembership(w => w.UserId, w => w.WorkspaceId);
        });

        var snapshot = mapped.SnapshotCode();

        Assert.Contains("b.ToTable(\"thrivestack_outbox\"", snapshot);
        Assert.Contains("\"Thrivestack:Outbox\"", snapshot);
        Assert.Equal(1, CountOf(snapshot, "Thrivestack:"));
    }

    [Fact]
    public void SnapshotCode_DesignTimeContextWithoutTheInterceptor_FailsNamingTheMapping()
    {
        using var design = new DesignTimeContext(m => m.Entity<AppUser>().ToThrivestackUser(u => u.Id), interceptor: false);

        var error = Assert.Throws<InvalidOperationException>(() => design.SnapshotCode());

        Assert.Contains("Thrivestack.EfCore.Mapping.MappingConfiguration", error.Message);
    }

    private static int CountOf(string text, string value) => (text.Length - text.Replace(value, "", StringComparison.Ordinal).Length) / value.Length;
}
