using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Backfill;

/// <summary>The rows of one chunk: how many were read, the last one's key (null when none), and their events.</summary>
internal sealed record BackfillChunk(int Read, string? LastKey, List<OutboxMessage> Messages);
