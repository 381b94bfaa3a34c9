namespace Thrivestack.EfCore.Sample.Model;

/// <summary>A user's membership of a workspace: inserting one sends an identify with <c>context.group_id</c>.</summary>
internal sealed class WorkspaceMember
{
    public Guid UserId { get; set; }

    public AppUser? User { get; set; }

    public int WorkspaceId { get; set; }

    public Workspace? Workspace { get; set; }

    public string Role { get; set; } = "member";
}
