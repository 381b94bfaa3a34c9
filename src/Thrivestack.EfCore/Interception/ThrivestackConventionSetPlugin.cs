using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Metadata.Conventions;
using Microsoft.EntityFrameworkCore.Metadata.Conventions.Infrastructure;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Interception;

/// <summary>Checks the ThriveStack mapping when the model is built, so mistakes fail at start, not on the first save.</summary>
internal sealed class ThrivestackConventionSetPlugin : IConventionSetPlugin, IModelFinalizingConvention
{
    public ConventionSet ModifyConventions(ConventionSet conventionSet)
    {
        conventionSet.ModelFinalizingConventions.Add(this);
        return conventionSet;
    }

    public void ProcessModelFinalizing(IConventionModelBuilder modelBuilder, IConventionContext<IConventionModelBuilder> context) =>
        MappingResolver.Resolve(modelBuilder.Metadata);
}
