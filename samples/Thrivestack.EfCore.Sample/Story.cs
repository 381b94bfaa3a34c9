using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Sample.Model;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Sample;

/// <summary>
/// What the app does: ordinary EF Core code, one scope and one SaveChanges per step, like one web request each.
/// After each save the story counts the outbox rows the save wrote and waits until the dispatcher delivered them.
/// </summary>
internal sealed class Story(IServiceProvider services, ThrivestackStandIn? standIn, CancellationToken stopping)
{
    private static readonly TimeSpan DeliveryDeadline = TimeSpan.FromSeconds(30);

    // Fixed ids, so every run identifies the same three demo users. A real app would use Guid.CreateVersion7().
    private static readonly Guid AdaId = new("5d1a7c3e-0000-4000-8000-000000000001");
    private static readonly Guid GraceId = new("5d1a7c3e-0000-4000-8000-000000000002");
    private static readonly Guid LinusId = new("5d1a7c3e-0000-4000-8000-000000000003");

    public async Task RunAsync()
    {
        await StepAsync(
            "Step 1: three users sign up",
            "The app adds Ada, Grace and Linus and calls SaveChangesAsync once.",
            expectedEvents: 3,
            db =>
            {
                db.Users.AddRange(
                    new AppUser { Id = AdaId, Email = "ada@example.com", FirstName = "Ada", LastName = "Lovelace", JobTitle = "Analyst", Phones = ["+44 20 7946 0001"] },
                    new AppUser { Id = GraceId, Email = "grace@example.com", FirstName = "Grace", LastName = "Hopper", JobTitle = "Engineer", Phones = ["+1 202 555 0102", "+1 202 555 0103"] },
                    new AppUser { Id = LinusId, Email = "linus@example.com", FirstName = "Linus", LastName = "Torvalds" });
                return Task.CompletedTask;
            });

        await StepAsync(
            "Step 2: Grace edits her profile",
            "Her job title (mapped to the trait enrichment_employment_title) changes to \"Director of Engineering\".",
            expectedEvents: 1,
            async db =>
            {
                var grace = await db.Users.SingleAsync(u => u.Id == GraceId);
                grace.JobTitle = "Director of Engineering";
            });

        await StepAsync(
            "Step 3: Ada signs in",
            "Her LoginCount goes from 0 to 1. LoginCount is not mapped to a trait.",
            expectedEvents: 0,
            async db =>
            {
                var ada = await db.Users.SingleAsync(u => u.Id == AdaId);
                ada.LoginCount++;
            });

        await StepAsync(
            "Step 4: Ada creates the workspace \"Acme\" and joins it",
            "One save inserts the workspace (its id comes from the database) and Ada's membership.",
            expectedEvents: 1,
            async db =>
            {
                var ada = await db.Users.SingleAsync(u => u.Id == AdaId);
                var acme = new Workspace { Name = "Acme" };
                acme.Members.Add(new WorkspaceMember { User = ada, Role = "owner" });
                db.Workspaces.Add(acme);
            });
    }

    private async Task StepAsync(string headline, string action, int expectedEvents, Func<AppDbContext, Task> change)
    {
        Console.WriteLine(headline);
        Console.WriteLine($"  {action}");

        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var before = await OutboxCounts.ReadAsync(db, stopping);

        await change(db);
        await db.SaveChangesAsync(stopping);
        var saved = Stopwatch.StartNew();

        var written = (await OutboxCounts.ReadAsync(db, stopping)).Total - before.Total;
        if (written != expectedEvents)
        {
            throw new StoryFailedException($"{headline}: expected {Events(expectedEvents)} in the outbox, but the save wrote {written}.");
        }

        if (written == 0)
        {
            Console.WriteLine("  -> No identify event: no mapped trait changed, so there is nothing to tell ThriveStack.");
            Console.WriteLine();
            return;
        }

        Console.WriteLine($"  -> SaveChanges wrote {Events(written)} to the outbox, in the same transaction.");
        await WaitForDeliveryAsync(db, before);
        Console.WriteLine($"  -> The dispatcher delivered {(written == 1 ? "it" : "them")} to ThriveStack {saved.ElapsedMilliseconds} ms after the save.");
        Console.WriteLine();
    }

    /// <summary>Polls the outbox until nothing is pending, and fails when an event was dead-lettered or the deadline passed.</summary>
    private async Task WaitForDeliveryAsync(AppDbContext db, OutboxCounts before)
    {
        var deadline = Stopwatch.StartNew();
        var counts = await OutboxCounts.ReadAsync(db, stopping);
        while (counts.Pending > 0)
        {
            if (deadline.Elapsed > DeliveryDeadline)
            {
                var hint = standIn is null
                    ? "Check THRIVESTACK_API_TOKEN (and THRIVESTACK_ENDPOINT) and the log lines above."
                    : $"The stand-in answered {standIn.Requests.Count} request(s): {string.Join(", ", standIn.Requests.Select(r => r.StatusCode))}.";
                throw new StoryFailedException(
                    $"{Events(counts.Pending)} still waiting in the outbox {DeliveryDeadline.TotalSeconds:0} s after the save. {hint}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), stopping);
            counts = await OutboxCounts.ReadAsync(db, stopping);
        }

        if (counts.DeadLettered > before.DeadLettered)
        {
            var reasons = (await db.GetThrivestackDeadLettersAsync(cancellationToken: stopping)).Select(d => $"user {d.UserId}: {d.Reason}");
            throw new StoryFailedException(
                $"{Events(counts.DeadLettered - before.DeadLettered)} could not be delivered and were dead-lettered: {string.Join("; ", reasons)}");
        }
    }

    private static string Events(int count) => count == 1 ? "1 identify event" : $"{count} identify events";
}
