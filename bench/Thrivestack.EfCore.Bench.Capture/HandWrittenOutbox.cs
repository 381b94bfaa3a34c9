using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>What an application writes by hand when it adds the outbox row itself: the same JSON, the same columns.</summary>
internal static class HandWrittenOutbox
{
    public static OutboxMessage For(BenchUser user, DateTime nowUtc)
    {
        var id = user.Id.ToString();
        var writer = IdentifyEventWriter.Start(id, nowUtc);
        writer.Trait("email", TraitValueKind.String, user.Email);
        writer.Trait(ThrivestackTraits.FirstName, TraitValueKind.String, user.FirstName);
        writer.Trait(ThrivestackTraits.LastName, TraitValueKind.String, user.LastName);
        writer.Trait(ThrivestackTraits.Phone, TraitValueKind.StringArray, user.Phones);
        writer.Trait("age", TraitValueKind.Number, user.Age);
        writer.Trait(ThrivestackTraits.ActiveAt, TraitValueKind.DateTime, user.ActiveAt);
        writer.Trait(ThrivestackTraits.City, TraitValueKind.String, user.Address.City);
        return writer.Finish(id, null, nowUtc, OutboxEventKind.UserTraits);
    }

    /// <summary>
    /// The least an application writes by hand for an atomic outbox: the save in a transaction, then each user's event
    /// (the same JSON) inserted with one raw statement of constant text, no tracking, then the commit.
    /// </summary>
    /// <param name="prebuilt">The rows, built before (to time the INSERT without the JSON); null builds them here.</param>
    public static void SaveWithRawInsert(BenchDbContext context, IReadOnlyList<BenchUser> users, IReadOnlyList<OutboxMessage>? prebuilt = null)
    {
        using var transaction = context.Database.BeginTransaction();
        context.SaveChanges();
        var now = DateTime.UtcNow;
        using var command = context.Database.GetDbConnection().CreateCommand();
        command.Transaction = transaction.GetDbTransaction();
        command.CommandText = "INSERT INTO \"thrivestack_outbox\" (\"user_id\", \"kind\", \"payload\", \"payload_bytes\", \"created_at\", \"next_attempt_at\", \"state\", \"attempts\") "
            + "VALUES ($user, 0, $payload, $bytes, $now, $now, 0, 0)";
        var user = Parameter(command, "$user");
        var payload = Parameter(command, "$payload");
        var bytes = Parameter(command, "$bytes");
        Parameter(command, "$now").Value = now;
        for (var i = 0; i < users.Count; i++)
        {
            var row = prebuilt?[i] ?? For(users[i], now);
            user.Value = row.UserId;
            payload.Value = row.Payload;
            bytes.Value = row.PayloadBytes;
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    private static System.Data.Common.DbParameter Parameter(System.Data.Common.DbCommand command, string name)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        command.Parameters.Add(parameter);
        return parameter;
    }
}
