using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Backfill;

/// <summary>
/// The backfill's instruments on the <c>Thrivestack.EfCore</c> meter: from the application's
/// <see cref="IMeterFactory"/> when the context has application services, else from a shared meter.
/// </summary>
internal sealed class BackfillMetrics
{
    private static readonly ConditionalWeakTable<IMeterFactory, BackfillMetrics> PerFactory = new();
    private static readonly Lazy<BackfillMetrics> Shared = new(() => new BackfillMetrics(new Meter(ThrivestackMetrics.MeterName)));

    private readonly Counter<long> enqueued;
    private readonly Histogram<double> chunkDuration;

    private BackfillMetrics(Meter meter)
    {
        enqueued = meter.CreateCounter<long>("thrivestack.backfill.enqueued", "{event}", "Identify events the backfill wrote to the outbox.");
        chunkDuration = meter.CreateHistogram<double>("thrivestack.backfill.chunk.duration", "s", "Duration of each backfill chunk's transaction.");
    }

    public static BackfillMetrics For(DbContext context)
    {
        var factory = context.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.ApplicationServiceProvider?.GetService<IMeterFactory>();
        return factory is null ? Shared.Value : PerFactory.GetValue(factory, static f => new BackfillMetrics(f.Create(ThrivestackMetrics.MeterName)));
    }

    public void Enqueued(long count, string name, bool users)
    {
        if (count > 0)
        {
            enqueued.Add(
                count,
                new KeyValuePair<string, object?>("thrivestack.backfill.name", name),
                new KeyValuePair<string, object?>("thrivestack.backfill.kind", users ? "user" : "membership"));
        }
    }

    public void Chunk(TimeSpan duration) => chunkDuration.Record(duration.TotalSeconds);
}
