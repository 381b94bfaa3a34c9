namespace Thrivestack.EfCore.Outbox;

/// <summary>One identify event waiting in the outbox, with its delivery state.</summary>
internal sealed class OutboxMessage
{
    public long Id { get; set; }

    /// <summary>The user the event is about; rows of one user are delivered in <see cref="Id"/> order.</summary>
    public string UserId { get; set; } = "";

    public string? GroupId { get; set; }

    public OutboxEventKind Kind { get; set; }

    /// <summary>The event exactly as it is sent: one JSON object, UTF-8 size in <see cref="PayloadBytes"/>.</summary>
    public string Payload { get; set; } = "";

    public int PayloadBytes { get; set; }

    public DateTime CreatedAt { get; set; }

    public OutboxRowState State { get; set; }

    public int Attempts { get; set; }

    public DateTime NextAttemptAt { get; set; }

    public Guid? LeaseId { get; set; }

    public string? LeaseOwner { get; set; }

    public DateTime? LeaseExpiresAt { get; set; }

    public DateTime? DeliveredAt { get; set; }

    public DateTime? DeadLetteredAt { get; set; }

    public string? LastError { get; set; }

    /// <summary>
    /// True for rows the interceptor derived from tracked changes (not mapped). A failed save leaves them
    /// tracked; the next save detaches them and derives them again, so a retry never doubles an event.
    /// </summary>
    public bool Captured { get; set; }
}
