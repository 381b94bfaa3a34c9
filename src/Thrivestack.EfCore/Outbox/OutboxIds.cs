using System.Text;
using Microsoft.EntityFrameworkCore;

namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The bound on user and group ids in the outbox. The columns are unbounded text, so a long id never fails the
/// application's save, but a btree index entry is limited (PostgreSQL: about 2,700 bytes): longer ids are left out.
/// </summary>
internal static class OutboxIds
{
    /// <summary>Ids of more UTF-8 bytes than this are left out; with at most 3 bytes per UTF-16 unit, short ids skip the count.</summary>
    public const int MaxUtf8Bytes = 2000;

    /// <summary>Whether the outbox stores the id: at most <paramref name="maxLength"/> characters (<see cref="Mapping.OutboxTable.MaxIdLength"/>) and <see cref="MaxUtf8Bytes"/> bytes.</summary>
    public static bool Fits(string id, int maxLength) =>
        id.Length <= maxLength
        && (id.Length * 3 <= MaxUtf8Bytes || Encoding.UTF8.GetByteCount(id) <= MaxUtf8Bytes);

    /// <summary>An id short enough for a log line.</summary>
    public static string Shorten(string id) => id.Length <= 64 ? id : string.Concat(id.AsSpan(0, 64), "...");
}
