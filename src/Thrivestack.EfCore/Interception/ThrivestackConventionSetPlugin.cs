using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Metadata.Conventions;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Diagnostics;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Checks the ThriveStack mapping when the model is built, so mistakes fail at start, not on the first save.
/// On a provider without SQL (EF's InMemory) it warns once per model that nothing is captured, instead of failing.
/// </summary>
internal sealed class ThrivestackConventionSetPlugin(IDbContextOptions options, ILoggerFactory loggerFactory)
    : IConventionSetPlugin, IModelFinalizingConvention
{
    public ConventionSet ModifyConventions(ConventionSet conventionSet)
    {
        conventionSet.ModelFinalizingConventions.Add(this);
        return conventionSet;
    }

    public void ProcessModelFinalizing(IConventionModelBuilder modelBuilder, IConventionContext<IConventionModelBuilder> context)
    {
        MappingResolver.Resolve(modelBuilder.Metadata);
        if (!ProviderFacts.IsRelational(options))
        {
            var provider = options.Extensions.FirstOrDefault(e => e.Info.IsDatabaseProvider)?.GetType().Name ?? "none";
            Log.CaptureUnsupportedProvider(loggerFactory.CreateLogger<ThrivestackIdentifyInterceptor>(), provider);
        }
    }
}
