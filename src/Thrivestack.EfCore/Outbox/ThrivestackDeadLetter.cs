namespace Thrivestack.EfCore;

/// <summary>An identify event that can never be delivered as it is, kept with the reason.</summary>
/// <param name="Id">The outbox row id; pass it to requeue or purge this event.</param>
/// <param name="UserId">The user the event is about.</param>
/// <param name="GroupId">The group (workspace/account) id, for membership events.</param>
/// <param name="Attempts">Failed attempts spent on it.</param>
/// <param name="CreatedAt">When the change was saved (UTC).</param>
/// <param name="DeadLetteredAt">When it was given up (UTC).</param>
/// <param name="Reason">Why: the HTTP status and ThriveStack's message, the size limit, or the attempts spent.</param>
/// <param name="Payload">The event's JSON exactly as it would be sent. It holds personal data: handle with care.</param>
public sealed record ThrivestackDeadLetter(
    long Id,
    string UserId,
    string? GroupId,
    int Attempts,
    DateTimeOffset CreatedAt,
    DateTimeOffset DeadLetteredAt,
    string Reason,
    string Payload);
