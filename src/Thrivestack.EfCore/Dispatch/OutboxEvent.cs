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
    /// Newest wins per user: of several full-trait events of one user in a claim only the newest is sent, the
    /// older ones ride on its acknowledgement. Membership and hand-written events are sent as they are.
    /// </summary>
    public static List<OutboxEvent> Coalesce(List<ClaimedRow> rows)
    {
        var events = new List<OutboxEvent>(rows.Count);
        Dictionary<string, int>? newestTraits = null;
        for (var i = rows.Count - 1; i >= 0; i--)
        {
            var row = rows[i];
            if (row.EventKind == OutboxEventKind.UserTraits && row.GroupId is null)
            {
                newestTraits ??= [];
                if (newestTraits.TryGetValue(row.UserId, out var newer))
                {
                    (events[newer].Superseded ??= []).Add(row.Id);
                    continue;
                }

                newestTraits[row.UserId] = events.Count;
            }

            events.Add(new OutboxEvent(row));
        }

        events.Reverse();
        return events;
    }
}
