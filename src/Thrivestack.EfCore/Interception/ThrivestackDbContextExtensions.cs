using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Microsoft.EntityFrameworkCore;

/// <summary>
/// Enqueues identify events by hand, for changes that never pass through the change tracker
/// (<c>ExecuteUpdate</c>, <c>ExecuteDelete</c>, raw SQL, bulk libraries).
/// </summary>
public static class ThrivestackDbContextExtensions
{
    /// <summary>
    /// Enqueues an identify event. Inside an open transaction (<c>Database.BeginTransaction</c>) the row is
    /// written into that transaction at once, so it commits or rolls back with it. Otherwise it joins the
    /// next <c>SaveChanges</c> of this context, in that save's transaction; a failed save keeps it for the retry.
    /// On a provider without SQL (EF's InMemory, as in tests) it does nothing, as saves capture nothing there.
    /// </summary>
    /// <param name="context">The application's context; its model must include <c>AddThrivestackOutbox()</c>.</param>
    /// <param name="userId">The user id, as ThriveStack should see it.</param>
    /// <param name="traits">Traits to send (strings, numbers, booleans, dates, Guids, enums, string collections); null values are left out.</param>
    /// <param name="groupId">The workspace/account id sent as <c>context.group_id</c>, if any.</param>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> or <paramref name="userId"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">
    /// <paramref name="userId"/> is empty; <paramref name="userId"/> or <paramref name="groupId"/> is longer than
    /// <see cref="ThrivestackModelBuilderExtensions.MaxIdLength"/> or than the outbox's id columns hold; or a trait value has a type without a JSON form.
    /// </exception>
    /// <exception cref="InvalidOperationException">The context's model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing) or is a compiled model.</exception>
    public static void EnqueueThrivestackIdentify(this DbContext context, string userId, IReadOnlyDictionary<string, object?>? traits = null, string? groupId = null)
    {
        if (Prepare(context, userId, traits, groupId) is not ({ } message, { } table))
        {
            return;
        }

        if (context.Database.CurrentTransaction is { } transaction)
        {
            OutboxRowWriter.Insert(context, table, transaction.GetDbTransaction(), [message]);
            CommitNudge.OnCommit(context);
        }
        else
        {
            context.Add(message);
        }
    }

    /// <summary>
    /// Enqueues an identify event; see <see cref="EnqueueThrivestackIdentify"/>. Inside an open transaction the
    /// row is written asynchronously into it.
    /// </summary>
    /// <param name="context">The application's context; its model must include <c>AddThrivestackOutbox()</c>.</param>
    /// <param name="userId">The user id, as ThriveStack should see it.</param>
    /// <param name="traits">Traits to send; null values are left out.</param>
    /// <param name="groupId">The workspace/account id sent as <c>context.group_id</c>, if any.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes when the row is written or tracked.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="context"/> or <paramref name="userId"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException">
    /// <paramref name="userId"/> is empty; <paramref name="userId"/> or <paramref name="groupId"/> is longer than
    /// <see cref="ThrivestackModelBuilderExtensions.MaxIdLength"/> or than the outbox's id columns hold; or a trait value has a type without a JSON form.
    /// </exception>
    /// <exception cref="InvalidOperationException">The context's model has no outbox (<c>modelBuilder.AddThrivestackOutbox()</c> is missing) or is a compiled model.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was canceled.</exception>
    public static async Task EnqueueThrivestackIdentifyAsync(
        this DbContext context,
        string userId,
        IReadOnlyDictionary<string, object?>? traits = null,
        string? groupId = null,
        CancellationToken cancellationToken = default)
    {
        if (Prepare(context, userId, traits, groupId) is not ({ } message, { } table))
        {
            return;
        }

        if (context.Database.CurrentTransaction is { } transaction)
        {
            await OutboxRowWriter.InsertAsync(context, table, transaction.GetDbTransaction(), [message], cancellationToken).ConfigureAwait(false);
            CommitNudge.OnCommit(context);
        }
        else
        {
            context.Add(message);
        }
    }

    /// <summary>The row to write and its table; null on a provider without SQL (EF's InMemory), where nothing is captured, as in saves.</summary>
    private static (OutboxMessage Message, OutboxTable Table)? Prepare(DbContext context, string userId, IReadOnlyDictionary<string, object?>? traits, string? groupId)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(userId);
        if (!context.Database.IsRelational())
        {
            return null;
        }

        var table = ModelMap.For(context.Model).RequireOutbox();
        if (!OutboxIds.Fits(userId, table.MaxIdLength) || (groupId is { } group && !OutboxIds.Fits(group, table.MaxIdLength)))
        {
            throw new ArgumentException(
                $"Ids longer than {table.MaxIdLength:N0} characters (or 2,000 UTF-8 bytes) cannot be enqueued: the outbox's id columns hold no more, and ThriveStack ids are keys, not text.",
                OutboxIds.Fits(userId, table.MaxIdLength) ? nameof(groupId) : nameof(userId));
        }

        var now = OptionsFacts.Of(context).Clock.GetUtcNow().UtcDateTime;
        var writer = IdentifyEventWriter.Start(userId, now);
        foreach (var (key, value) in traits ?? new Dictionary<string, object?>())
        {
            writer.Trait(key, value);
        }

        return (writer.Finish(userId, string.IsNullOrEmpty(groupId) ? null : groupId, now, OutboxEventKind.Manual), table);
    }
}
