namespace Thrivestack.EfCore.Bench;

/// <summary>A user's membership of a workspace (the backfill scenario's second mapped entity).</summary>
public sealed class BenchMembership
{
    public Guid UserId { get; set; }

    public Guid WorkspaceId { get; set; }

    public string Role { get; set; } = "member";
}
