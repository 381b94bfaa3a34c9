using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Thrivestack.EfCore.Outbox;

/// <summary>The backfill checkpoint table, beside the outbox in the same schema.</summary>
internal static class BackfillCheckpointConfiguration
{
    public const string TableName = "thrivestack_backfill";

    private static readonly ValueConverter<DateTime, DateTime> Utc =
        new(v => v, v => DateTime.SpecifyKind(v, DateTimeKind.Utc));

    private static readonly ValueConverter<DateTime?, DateTime?> NullableUtc =
        new(v => v, v => v.HasValue ? DateTime.SpecifyKind(v.Value, DateTimeKind.Utc) : v);

    /// <summary>
    /// The coordination table as <paramref name="model"/> maps it (backfill checkpoints, SQLite's outbox lease); null
    /// when the model has none.
    /// </summary>
    public static (string Name, string? Schema)? TableIn(IModel model) =>
        model.FindEntityType(typeof(BackfillCheckpoint)) is { } entity && entity.GetTableName() is { } name ? (name, entity.GetSchema()) : null;

    public static void Configure(EntityTypeBuilder<BackfillCheckpoint> entity, string? schema)
    {
        entity.ToTable(TableName, schema);
        entity.HasKey(c => new { c.Name, c.Entity }).HasName($"pk_{TableName}");
        entity.Property(c => c.Name).HasColumnName("name").HasMaxLength(200);
        entity.Property(c => c.Entity).HasColumnName("entity").HasMaxLength(300);
        entity.Property(c => c.LastKey).HasColumnName("last_key").HasMaxLength(2000);
        entity.Property(c => c.Processed).HasColumnName("processed");
        entity.Property(c => c.Enqueued).HasColumnName("enqueued");
        entity.Property(c => c.StartedAt).HasColumnName("started_at").HasConversion(NullableUtc);
        entity.Property(c => c.CompletedAt).HasColumnName("completed_at").HasConversion(NullableUtc);
        entity.Property(c => c.UpdatedAt).HasColumnName("updated_at").HasConversion(Utc);
        entity.Property(c => c.LockOwner).HasColumnName("lock_owner").HasMaxLength(200);
        entity.Property(c => c.LockExpiresAt).HasColumnName("lock_expires_at").HasConversion(NullableUtc);
    }
}
