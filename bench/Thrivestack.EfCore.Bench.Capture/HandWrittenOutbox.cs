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
}
