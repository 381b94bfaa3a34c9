namespace Thrivestack.EfCore.Outbox;

/// <summary>The dispatcher's own statements for one model, built once: the claim and the statistics (null: the portable LINQ forms).</summary>
internal sealed record OutboxSql(string? Claim, string? Statistics);
