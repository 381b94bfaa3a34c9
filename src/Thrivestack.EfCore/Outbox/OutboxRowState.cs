namespace Thrivestack.EfCore.Outbox;

/// <summary>The life of an outbox row. Only <see cref="Pending"/> rows are claimed.</summary>
internal enum OutboxRowState
{
    Pending = 0,
    Delivered = 1,
    DeadLettered = 2,
}
