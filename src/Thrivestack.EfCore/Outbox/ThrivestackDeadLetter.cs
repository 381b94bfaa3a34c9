namespace Thrivestack.EfCore;

/// <summary>An identify event that can never be delivered as it is, kept with the reason.</summary>
public sealed class ThrivestackDeadLetter
{
    /// <summary>The outbox row id; pass it to requeue or purge this event.</summary>
    public long Id { get; init; }

    /// <summary>The user the event is about.</summary>
    public string UserId { get; init; } = "";

    /// <summary>The group (workspace/account) id, for membership events.</summary>
    public string? GroupId { get; init; }

    /// <summary>Failed attempts spent on it.</summary>
    public int Attempts { get; init; }

    /// <summary>When the change was saved (UTC).</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it was given up (UTC).</summary>
    public DateTimeOffset DeadLetteredAt { get; init; }

    /// <summary>Why: the HTTP status and ThriveStack's message, the size limit, or the attempts spent.</summary>
    public string Reason { get; init; } = "";

    /// <summary>The event's JSON exactly as it would be sent. It holds personal data: handle with care.</summary>
    public string Payload { get; init; } = "";
}
