using System.Text;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Dispatch;

/// <summary>
/// One event to send: a claimed row, plus the older rows of the same user it supersedes (coalesced rows are
/// acknowledged with it). <see cref="Bytes"/> is the exact UTF-8 size the event adds to a request body.
/// </summary>
internal sealed class OutboxEvent(ClaimedRow row)
{
    public ClaimedRow Row { get; } = row;

    public int Bytes { get; } = Encoding.UTF8.GetByteCount(row.Payload);

    public List<long>? Superseded { get; set; }

    public IEnumerable<long> Ids => Superseded is null ? [Row.Id] : Superseded.Append(Row.Id);

    /// <summary>
    /// Newest wins per user: of several full-trait events of one user in a claim only one is sent, the others
    /// ride on its acknowledgement. The winner is the newest live event; a backfill event wins only when the
    /// claim holds no live one, because a live row whose transaction committed after a backfill chunk can carry
    /// a smaller id than that chunk's row. Membership and hand-written events are sent as they are.
    /// </summary>
    public static List<OutboxEvent> Coalesce(List<ClaimedRow> rows)
    {
        Dictionary<string, ClaimedRow>? winners = null;
        foreach (var row in rows)
        {
            if (!IsFullTraits(row))
            {
                continue;
            }

            winners ??= [];
            if (!winners.TryGetValue(row.UserId, out var current) || Beats(row, current))
            {
                winners[row.UserId] = row;
            }
        }

        var events = new List<OutboxEvent>(rows.Count);
        if (winners is null)
        {
            events.AddRange(rows.Select(r => new OutboxEvent(r)));
            return events;
        }

        Dictionary<string, OutboxEvent> sent = [];
        Dictionary<string, List<long>>? superseded = null;
        foreach (var row in rows)
        {
            if (!IsFullTraits(row))
            {
                events.Add(new OutboxEvent(row));
            }
            else if (ReferenceEquals(winners[row.UserId], row))
            {
                var winner = new OutboxEvent(row);
                sent[row.UserId] = winner;
                events.Add(winner);
            }
            else
            {
                superseded ??= [];
                if (!superseded.TryGetValue(row.UserId, out var ids))
                {
                    superseded[row.UserId] = ids = [];
                }

                ids.Add(row.Id);
            }
        }

        foreach (var (userId, ids) in superseded ?? [])
        {
            sent[userId].Superseded = ids;
        }

        return events;
    }

    private static bool IsFullTraits(ClaimedRow row) =>
        row.GroupId is null && row.EventKind is OutboxEventKind.UserTraits or OutboxEventKind.Backfill;

    // Live beats backfill whatever the ids; between two of the same kind the newer row wins.
    private static bool Beats(ClaimedRow candidate, ClaimedRow current) =>
        candidate.EventKind == current.EventKind
            ? candidate.Id > current.Id
            : candidate.EventKind == OutboxEventKind.UserTraits;
}
