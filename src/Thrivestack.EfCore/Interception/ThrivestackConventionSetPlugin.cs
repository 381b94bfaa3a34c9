using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Metadata.Conventions;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Checks the ThriveStack mapping when the model is built, so mistakes fail at start, not on the first save.
/// It also moves the mapping out of the design-time model (which migrations snapshot) into a runtime annotation of
/// the finalized model, and checks it there, where type mappings and value comparers are known.
/// On a provider without SQL (EF's InMemory) it warns once per model that nothing is captured, instead of failing.
/// </summary>
internal sealed class ThrivestackConventionSetPlugin(IDbContextOptions options, ILoggerFactory loggerFactory)
    : IConventionSetPlugin, IModelFinalizingConvention, IModelFinalizedConvention
{
    // A scoped service builds one model at a time: Finalizing and Finalized of the same model follow each other.
    private MappingConfiguration? detached;

    public ConventionSet ModifyConventions(ConventionSet conventionSet)
    {
        conventionSet.ModelFinalizingConventions.Add(this);
        conventionSet.ModelFinalizedConventions.Add(this);
        return conventionSet;
    }

    public void ProcessModelFinalizing(IConventionModelBuilder modelBuilder, IConventionContext<IConventionModelBuilder> context) =>
        detached = MappingConfiguration.Detach(modelBuilder.Metadata);

    public IModel ProcessModelFinalized(IModel model)
    {
        if (Interlocked.Exchange(ref detached, null) is { } configuration)
        {
            MappingConfiguration.Attach(model, configuration);
        }

        MappingResolver.Validate(model);
        if (!ProviderFacts.IsRelational(options))
        {
            var provider = options.Extensions.FirstOrDefault(e => e.Info.IsDatabaseProvider)?.GetType().Name ?? "none";
            Log.CaptureUnsupportedProvider(loggerFactory.CreateLogger<ThrivestackIdentifyInterceptor>(), provider);
        }

        return model;
    }
}
