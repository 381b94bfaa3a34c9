using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Bench.Capture;

/// <summary>
/// What each index of the outbox costs (<c>-- indexes [rounds]</c>), SQLite in WAL on the bench folder: the outbox as the
/// model creates it, and copies without one index (or without any), each with the same backlog (pending rows of users
/// with one or a few rows, and delivered history as <c>DeliveredRetention</c> keeps it). Per round and table, in a
/// shuffled order: one lean INSERT transaction of 1,000 rows (the interceptor's write), then the SQLite claim of 100
/// users, rolled back so every round claims from the same backlog. Ratios are medians of per-round ratios against the
/// full table.
/// </summary>
internal static class IndexCost
{
    private const int Pending = 50_000;
    private const int Delivered = 50_000;

    private static readonly string[] Variants = ["all", "no ix_pending", "no ix_pending_user", "no ix_delivered", "none"];

    public static void Run(string[] args)
    {
        var rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 30;
        Console.WriteLine($"outbox index costs; database folder {BenchDatabase.Directory}; {Environment.ProcessorCount} cores; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        var tables = Variants.ToDictionary(v => v, Create);
        try
        {
            var random = new Random(7);
            var insert = Variants.ToDictionary(v => v, _ => new List<double>());
            var claim = Variants.ToDictionary(v => v, _ => new List<double>());
            for (var round = -3; round < rounds; round++)
            {
                foreach (var variant in Variants.OrderBy(_ => random.Next()))
                {
                    var (insertMs, claimMs) = tables[variant].Measure(round);
                    if (round >= 0)
                    {
                        insert[variant].Add(insertMs);
                        claim[variant].Add(claimMs);
                    }
                }
            }

            Console.WriteLine("| outbox indexes | INSERT of 1,000 rows (median) | per row | vs all | claim of 100 users (median) | vs all |");
            Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
            foreach (var variant in Variants)
            {
                var insertRatio = Median(insert[variant].Zip(insert["all"], (a, b) => a / b));
                var claimRatio = Median(claim[variant].Zip(claim["all"], (a, b) => a / b));
                Console.WriteLine($"| {variant} | {Median(insert[variant]):0.00} ms | {Median(insert[variant]) * 1000 / 1000:0.00} us | {insertRatio:0.00}x | {Median(claim[variant]):0.000} ms | {claimRatio:0.00}x |");
            }

            Console.WriteLine($"// load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
        }
        finally
        {
            foreach (var table in tables.Values)
            {
                table.Dispose();
            }
        }
    }

    private static VariantTable Create(string variant) => new(variant);

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>One database whose outbox lacks the indexes the variant names.</summary>
    private sealed class VariantTable : IDisposable
    {
        private readonly string path = Path.Combine(BenchDatabase.Directory, $"thrivestack-indexes-{Guid.NewGuid():N}.db");
        private readonly DbContextOptions<BenchDbContext> options;
        private readonly string claimSql;
        private readonly string leaseKey;
        private int batch;

        public VariantTable(string variant)
        {
            var connection = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
            options = new DbContextOptionsBuilder<BenchDbContext>().UseSqlite(connection).AddInterceptors(SynchronousNormal.Instance).Options;
            using var context = new BenchDbContext(options);
            context.Database.EnsureCreated();
            context.Database.ExecuteSqlRaw("PRAGMA journal_mode = WAL;");
            foreach (var index in new[] { "ix_thrivestack_outbox_pending", "ix_thrivestack_outbox_pending_user", "ix_thrivestack_outbox_delivered" })
            {
                var suffix = index["ix_thrivestack_outbox".Length..];
                if (variant == "none" || variant == $"no ix{suffix}")
                {
                    var drop = "DROP INDEX \"" + index + "\";";
                    context.Database.ExecuteSqlRaw(drop);
                }
            }

            var table = ModelMap.For(context.Model).RequireOutbox();
            // SQLite claims by reading under the outbox-wide lease: the bench holds that lease for the whole run.
            var lease = SqliteDialect.Instance.OutboxLease(table, context.Model.FindEntityType(typeof(BackfillCheckpoint)), context.GetService<ISqlGenerationHelper>())!;
            claimSql = lease.Claim;
            leaseKey = lease.Key;
            context.Database.ExecuteSqlRaw(
                "INSERT INTO \"thrivestack_backfill\" (\"name\", \"entity\", \"processed\", \"enqueued\", \"updated_at\", \"lock_owner\", \"lock_expires_at\") VALUES ({0}, {1}, 0, 0, {2}, 'bench', {3})",
                DispatcherLeaseSql.Name, leaseKey, DateTime.UtcNow, DateTime.UtcNow.AddYears(1));
            var now = new DateTime(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc);
            using var transaction = context.Database.BeginTransaction();
            var rows = new List<OutboxMessage>();
            for (var i = 0; i < Pending + Delivered; i++)
            {
                // Pending users have one to three rows; delivered history is older.
                var user = i < Delivered ? $"old-{i}" : $"user-{(i - Delivered) / 2}";
                rows.Add(Row(user, now.AddMinutes(-10)));
            }

            OutboxRowWriter.Insert(context, table, transaction.GetDbTransaction(), rows);
            context.Database.ExecuteSql($"UPDATE \"thrivestack_outbox\" SET \"state\" = 1, \"delivered_at\" = \"created_at\" WHERE \"id\" <= {Delivered};");
            transaction.Commit();
            context.Database.ExecuteSqlRaw("ANALYZE;");
        }

        public (double InsertMs, double ClaimMs) Measure(int round)
        {
            using var context = new BenchDbContext(options);
            var table = ModelMap.For(context.Model).RequireOutbox();
            var now = new DateTime(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc).AddSeconds(round);
            var rows = Enumerable.Range(0, 1000).Select(i => Row($"new-{batch}-{i}", now)).ToList();
            batch++;
            context.Database.OpenConnection();
            var insertClock = Stopwatch.StartNew();
            using (var transaction = context.Database.BeginTransaction())
            {
                OutboxRowWriter.Insert(context, table, transaction.GetDbTransaction(), rows);
                transaction.Commit();
            }

            var insertMs = insertClock.Elapsed.TotalMilliseconds;

            // The new rows are the newest: delete them again so every round claims from the same backlog.
            context.Database.ExecuteSqlRaw("DELETE FROM \"thrivestack_outbox\" WHERE \"user_id\" LIKE 'new-%';");
            var connection = (SqliteConnection)context.Database.GetDbConnection();
            using var claim = connection.CreateCommand();
            claim.CommandText = claimSql;
            claim.Parameters.AddWithValue("@p0", Guid.NewGuid().ToString());
            claim.Parameters.AddWithValue("@p1", "bench");
            claim.Parameters.AddWithValue("@p2", now.AddMinutes(1));
            claim.Parameters.AddWithValue("@p3", now);
            claim.Parameters.AddWithValue("@p4", 100);
            claim.Parameters.AddWithValue("@p5", now.AddDays(1));
            claim.Parameters.AddWithValue("@p6", now.AddDays(1));
            claim.Parameters.AddWithValue("@p7", "[]");
            claim.Parameters.AddWithValue("@p8", leaseKey);
            var claimClock = Stopwatch.StartNew();
            using (var transaction = connection.BeginTransaction())
            {
                claim.Transaction = transaction;
                using (var reader = claim.ExecuteReader())
                {
                    var count = 0;
                    while (reader.Read())
                    {
                        count++;
                    }

                    if (count == 0)
                    {
                        throw new InvalidOperationException("The claim found no row: the backlog is not what this measure needs.");
                    }
                }

                transaction.Rollback();
            }

            return (insertMs, claimClock.Elapsed.TotalMilliseconds);
        }

        public void Dispose()
        {
            SqliteConnection.ClearAllPools();
            foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            {
                File.Delete(file);
            }
        }

        private static OutboxMessage Row(string user, DateTime at)
        {
            var writer = IdentifyEventWriter.Start(user, at);
            writer.Trait("email", TraitValueKind.String, user + "@example.com");
            writer.Trait(ThrivestackTraits.FirstName, TraitValueKind.String, "Ada");
            writer.Trait(ThrivestackTraits.City, TraitValueKind.String, "London");
            return writer.Finish(user, null, at, OutboxEventKind.UserTraits);
        }
    }
}
