using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Mapping;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Thrivestack.EfCore;

/// <summary>
/// Maps properties of a ThriveStack user entity to identify traits. Returned by
/// <see cref="ThrivestackModelBuilderExtensions.ToThrivestackUser(EntityTypeBuilder, string)"/>.
/// </summary>
public class ThrivestackUserBuilder
{
    internal ThrivestackUserBuilder(EntityTypeBuilder entityTypeBuilder)
    {
        EntityTypeBuilder = entityTypeBuilder;
    }

    /// <summary>The builder of the mapped entity type.</summary>
    public EntityTypeBuilder EntityTypeBuilder { get; }

    /// <summary>
    /// Sends the property (or shadow property) <paramref name="propertyPath"/> as the trait <paramref name="traitKey"/>.
    /// A path may go through owned navigations, for example <c>"Address.City"</c>.
    /// </summary>
    /// <param name="propertyPath">The property name, or a dotted path through owned references.</param>
    /// <param name="traitKey">The trait key, for example <see cref="ThrivestackTraits.FirstName"/> or <c>"email"</c>.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="propertyPath"/> or <paramref name="traitKey"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="propertyPath"/> or <paramref name="traitKey"/> is empty or white space.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="traitKey"/> is already mapped to another property of this entity type.</exception>
    public ThrivestackUserBuilder HasTrait(string propertyPath, string traitKey)
    {
        ThrivestackModelBuilderExtensions.AddTrait(EntityTypeBuilder, propertyPath, traitKey);
        return this;
    }
}

/// <summary>
/// Maps properties of a ThriveStack user entity of type <typeparamref name="TEntity"/> to identify traits.
/// </summary>
/// <typeparam name="TEntity">The user entity type.</typeparam>
public sealed class ThrivestackUserBuilder<TEntity> : ThrivestackUserBuilder
    where TEntity : class
{
    internal ThrivestackUserBuilder(EntityTypeBuilder<TEntity> entityTypeBuilder)
        : base(entityTypeBuilder)
    {
    }

    /// <summary>
    /// Sends the property selected by <paramref name="property"/> as the trait <paramref name="traitKey"/>.
    /// The selector may go through owned references, for example <c>u =&gt; u.Address.City</c>.
    /// </summary>
    /// <typeparam name="TProperty">The property type: a string, number, boolean, date, <see cref="Guid"/>, enum or a collection of strings.</typeparam>
    /// <param name="property">A property access, such as <c>u =&gt; u.Email</c>.</param>
    /// <param name="traitKey">The trait key, for example <see cref="ThrivestackTraits.FirstName"/> or <c>"email"</c>.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="property"/> or <paramref name="traitKey"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="property"/> is not a property access, or <paramref name="traitKey"/> is empty or white space.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="traitKey"/> is already mapped to another property of this entity type.</exception>
    /// <remarks>
    /// A path that does not lead to a property through owned references, or a property type without a JSON form, fails with an
    /// <see cref="InvalidOperationException"/> when EF builds the model, that is on the context's first use.
    /// </remarks>
    public ThrivestackUserBuilder<TEntity> HasTrait<TProperty>(Expression<Func<TEntity, TProperty>> property, string traitKey)
    {
        ArgumentNullException.ThrowIfNull(property);
        ThrivestackModelBuilderExtensions.AddTrait(EntityTypeBuilder, MemberPath.From(property), traitKey);
        return this;
    }

    /// <summary>
    /// Sends the property (or shadow property) <paramref name="propertyPath"/> as the trait <paramref name="traitKey"/>.
    /// </summary>
    /// <param name="propertyPath">The property name, or a dotted path through owned references.</param>
    /// <param name="traitKey">The trait key.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="propertyPath"/> or <paramref name="traitKey"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="propertyPath"/> or <paramref name="traitKey"/> is empty or white space.</exception>
    /// <exception cref="InvalidOperationException"><paramref name="traitKey"/> is already mapped to another property of this entity type.</exception>
    public new ThrivestackUserBuilder<TEntity> HasTrait(string propertyPath, string traitKey)
    {
        base.HasTrait(propertyPath, traitKey);
        return this;
    }
}
