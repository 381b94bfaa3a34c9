using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Outbox;

/// <summary>The outbox table: snake_case columns, UTC times, partial indexes on the pending rows.</summary>
internal static class OutboxModelConfiguration
{
    public const string PendingFilter = "\"state\" = 0";

    private static readonly ValueConverter<DateTime, DateTime> Utc =
        new(v => v, v => DateTime.SpecifyKind(v, DateTimeKind.Utc));

    private static readonly ValueConverter<DateTime?, DateTime?> NullableUtc =
        new(v => v, v => v.HasValue ? DateTime.SpecifyKind(v.Value, DateTimeKind.Utc) : v);

    public static void Configure(EntityTypeBuilder<OutboxMessage> entity, string tableName, string? schema)
    {
        entity.ToTable(tableName, schema);
        entity.HasAnnotation(ThrivestackAnnotationNames.Outbox, true);
        entity.HasKey(m => m.Id).HasName($"pk_{tableName}");
        entity.Property(m => m.Id).HasColumnName("id").ValueGeneratedOnAdd();
        // Unbounded, so a long id never fails the application's save; ids past MaxIdLength are left out instead.
        entity.Property(m => m.UserId).HasColumnName("user_id").IsRequired();
        entity.Property(m => m.GroupId).HasColumnName("group_id");
        entity.Property(m => m.Kind).HasColumnName("kind");
        entity.Property(m => m.Payload).HasColumnName("payload").IsRequired();
        entity.Property(m => m.PayloadBytes).HasColumnName("payload_bytes");
        entity.Property(m => m.CreatedAt).HasColumnName("created_at").HasConversion(Utc);
        entity.Property(m => m.State).HasColumnName("state");
        entity.Property(m => m.Attempts).HasColumnName("attempts");
        entity.Property(m => m.NextAttemptAt).HasColumnName("next_attempt_at").HasConversion(Utc);
        entity.Property(m => m.LeaseId).HasColumnName("lease_id");
        entity.Property(m => m.LeaseOwner).HasColumnName("lease_owner").HasMaxLength(200);
        entity.Property(m => m.LeaseExpiresAt).HasColumnName("lease_expires_at").HasConversion(NullableUtc);
        entity.Property(m => m.DeliveredAt).HasColumnName("delivered_at").HasConversion(NullableUtc);
        entity.Property(m => m.DeadLetteredAt).HasColumnName("dead_lettered_at").HasConversion(NullableUtc);
        entity.Property(m => m.LastError).HasColumnName("last_error").HasMaxLength(2000);
        entity.Ignore(m => m.Captured);

        // Claims walk pending rows in id order and check each user's older rows: both indexes cover only
        // pending rows, so delivered and dead-lettered history never slows a claim.
        entity.HasIndex(m => m.Id).HasDatabaseName($"ix_{tableName}_pending").HasFilter(PendingFilter);
        entity.HasIndex(m => new { m.UserId, m.Id }).HasDatabaseName($"ix_{tableName}_pending_user").HasFilter(PendingFilter);
        entity.HasIndex(m => m.DeliveredAt).HasDatabaseName($"ix_{tableName}_delivered").HasFilter("\"state\" = 1");
    }
}
