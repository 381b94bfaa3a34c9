namespace Thrivestack.EfCore.Bench;

/// <summary>A user's membership of a workspace (the second mapped entity: the backfill scenario seeds them).</summary>
public sealed class BenchMembership
{
    public Guid UserId { get; set; }

    public Guid WorkspaceId { get; set; }

    public string Role { get; set; } = "member";
}
