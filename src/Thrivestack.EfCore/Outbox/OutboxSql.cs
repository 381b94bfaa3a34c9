namespace Thrivestack.EfCore.Outbox;

/// <summary>The dispatcher's own statements for one model, built once: the claim (null: the portable LINQ claim) and the statistics.</summary>
internal sealed record OutboxSql(string? Claim, string Statistics);
