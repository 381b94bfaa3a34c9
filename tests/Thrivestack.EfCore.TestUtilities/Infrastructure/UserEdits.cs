using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Tests.Infrastructure;

/// <summary>Users edited several times in separate commits while earlier events of theirs are in flight, and the check that each user's edits arrived in order.</summary>
internal static class UserEdits
{
    /// <summary>
    /// Edits users user0 to user{users - 1} <paramref name="edits"/> times (trait "edit" = 1, 2, ...), each round in one commit once
    /// <paramref name="arrivedPerRound"/> events per round so far have arrived.
    /// </summary>
    public static async Task EnqueueAsync(DispatchHarness harness, int users, int edits, int arrivedPerRound, TimeSpan deadline)
    {
        for (var edit = 1; edit <= edits; edit++)
        {
            await harness.EnqueueAsync(Enumerable.Range(0, users).Select(u => ($"user{u}", (IReadOnlyDictionary<string, object?>?)new Dictionary<string, object?> { ["edit"] = edit })));
            await harness.StandIn.WaitUntilAsync(s => s.Events.Count >= edit * arrivedPerRound, deadline);
        }
    }

    /// <summary>
    /// The users whose edits did not arrive strictly rising (an older edit after a newer one, or one twice: no crash here to
    /// excuse it) or not ending with the last one, each with the edits it received in arrival order.
    /// </summary>
    public static List<string> OutOfOrder(ThrivestackStandIn standIn, int users, int edits) =>
        Enumerable.Range(0, users)
            .Select(u => (User: $"user{u}", Seen: standIn.EventsFor($"user{u}").Select(e => e.Traits!.Value.GetProperty("edit").GetInt32()).ToList()))
            .Where(x => !x.Seen.SequenceEqual(x.Seen.Distinct().Order()) || x.Seen.Count == 0 || x.Seen[^1] != edits)
            .Select(x => $"{x.User}: {string.Join(',', x.Seen)}")
            .ToList();
}
