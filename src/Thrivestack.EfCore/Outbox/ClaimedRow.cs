namespace Thrivestack.EfCore.Outbox;

/// <summary>A row taken by a claim: what the dispatcher needs to send and acknowledge it.</summary>
internal sealed class ClaimedRow
{
    public long Id { get; set; }

    public string UserId { get; set; } = "";

    public string? GroupId { get; set; }

    public int Kind { get; set; }

    public string Payload { get; set; } = "";

    public int Attempts { get; set; }

    public OutboxEventKind EventKind => (OutboxEventKind)Kind;
}
