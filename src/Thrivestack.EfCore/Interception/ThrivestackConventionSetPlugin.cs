using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Metadata.Conventions;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Adds the <see cref="MappingConvention"/> to every model the context builds: it keeps the ThriveStack mapping out of
/// migration snapshots and checks it, so mistakes fail at start, not on the first save.
/// On a provider without SQL (EF's InMemory) it warns once per model that nothing is captured, instead of failing.
/// </summary>
internal sealed class ThrivestackConventionSetPlugin(IDbContextOptions options, IDatabaseProvider provider, ILoggerFactory loggerFactory)
    : IConventionSetPlugin, IModelFinalizedConvention
{
    public ConventionSet ModifyConventions(ConventionSet conventionSet)
    {
        var mapping = new MappingConvention();
        conventionSet.ModelFinalizingConventions.Add(mapping);
        conventionSet.ModelFinalizedConventions.Add(mapping);
        conventionSet.ModelFinalizedConventions.Add(this);
        return conventionSet;
    }

    public IModel ProcessModelFinalized(IModel model)
    {
        if (!ProviderFacts.IsRelational(options))
        {
            Log.CaptureUnsupportedProvider(loggerFactory.CreateLogger<ThrivestackIdentifyInterceptor>(), provider.Name);
        }

        return model;
    }
}
