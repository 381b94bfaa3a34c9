using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Metadata.Conventions;

namespace Thrivestack.EfCore.Mapping;

/// <summary>
/// Takes the <see cref="MappingConfiguration"/> out of the design-time model, which <c>dotnet ef</c> writes into
/// migration snapshots and compiled models, puts it on the finalized runtime model as a runtime annotation, and checks
/// it there (type mappings and value comparers are known by then), so mapping mistakes fail when the model is built.
/// One instance per model build: the configuration it holds between the two steps belongs to that model.
/// </summary>
internal sealed class MappingConvention : IModelFinalizingConvention, IModelFinalizedConvention
{
    private MappingConfiguration? configuration;

    public void ProcessModelFinalizing(IConventionModelBuilder modelBuilder, IConventionContext<IConventionModelBuilder> context) =>
        configuration = MappingConfiguration.Detach(modelBuilder.Metadata);

    public IModel ProcessModelFinalized(IModel model)
    {
        if (configuration is not null)
        {
            MappingConfiguration.Attach(model, configuration);
        }

        MappingResolver.Validate(model);
        return model;
    }
}
