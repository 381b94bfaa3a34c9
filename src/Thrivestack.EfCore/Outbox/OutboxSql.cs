namespace Thrivestack.EfCore.Outbox;

/// <summary>
/// The dispatcher's own statements for one model, built once: the claim and the statistics (null: the portable LINQ
/// forms), on SQLite the outbox-wide lease with its read-only claim, and on PostgreSQL the refresh of the planner's
/// statistics for the outbox (<see cref="OutboxDialect.AnalyzeSql"/>).
/// </summary>
internal sealed record OutboxSql(string? Claim, string? Statistics, DispatcherLeaseSql? Lease, string? Analyze = null);
