namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The dispatcher's own statements for one model, built once: the claim and the statistics (null: the portable LINQ
/// forms), and on SQLite the outbox-wide lease with its read-only claim.
/// </summary>
internal sealed record OutboxSql(string? Claim, string? Statistics, DispatcherLeaseSql? Lease);
