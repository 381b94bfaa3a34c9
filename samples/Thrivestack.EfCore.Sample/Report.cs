using System.Globalization;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Sample.Model;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Sample;

/// <summary>Prints what ThriveStack received and the outbox's final state.</summary>
internal static class Report
{
    public static async Task PrintAsync(IServiceProvider services, ThrivestackStandIn? standIn)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var counts = await OutboxCounts.ReadAsync(db);

        Console.WriteLine("What ThriveStack received");
        if (standIn is null)
        {
            Console.WriteLine($"  {counts.Delivered} identify events, each batch answered with 200 and success: true.");
            Console.WriteLine("  Look up the three demo users in ThriveStack.");
        }
        else
        {
            PrintRequests(standIn);
        }

        Console.WriteLine();
        Console.WriteLine("The outbox at the end");
        Console.WriteLine($"  {counts.Pending} pending, {counts.Delivered} delivered (kept for this demo; by default they are deleted at once), {counts.DeadLettered} dead-lettered.");
        if (counts.DeadLettered > 0)
        {
            foreach (var deadLetter in await db.GetThrivestackDeadLettersAsync())
            {
                Console.WriteLine($"  dead letter {deadLetter.Id}, user {deadLetter.UserId}: {deadLetter.Reason}");
            }
        }
    }

    private static void PrintRequests(ThrivestackStandIn standIn)
    {
        var events = standIn.Events;
        foreach (var request in standIn.Requests)
        {
            Console.WriteLine(
                $"  Request {request.Index + 1}: POST {standIn.Endpoint.AbsolutePath} -> {request.StatusCode}, {request.EventCount} {(request.EventCount == 1 ? "event" : "events")}, {request.BodyBytes} bytes");
            if (request.Error is not null)
            {
                Console.WriteLine($"    not accepted: {request.Error}");
            }

            foreach (var identify in events.Where(e => e.RequestIndex == request.Index))
            {
                PrintEvent(identify);
            }
        }
    }

    private static void PrintEvent(ReceivedIdentifyEvent identify)
    {
        Console.WriteLine($"    - user_id    {identify.UserId}");
        Console.WriteLine($"      timestamp  {identify.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture)}");
        var traits = identify.Traits is { ValueKind: JsonValueKind.Object } t ? t.EnumerateObject().ToList() : [];
        if (traits.Count == 0)
        {
            Console.WriteLine("      traits     (none)");
        }

        for (var i = 0; i < traits.Count; i++)
        {
            Console.WriteLine($"      {(i == 0 ? "traits" : ""),-10} {traits[i].Name}: {traits[i].Value.GetRawText()}");
        }

        Console.WriteLine($"      group_id   {identify.GroupId ?? "(none)"}");
    }
}
