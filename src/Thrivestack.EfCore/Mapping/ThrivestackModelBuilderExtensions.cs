using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Thrivestack.EfCore;
using Thrivestack.EfCore.Mapping;

namespace Microsoft.EntityFrameworkCore;

/// <summary>
/// Maps an application's model for ThriveStack identify: the outbox table, user entities and their
/// traits, and membership entities that tie a user to a workspace (<c>context.group_id</c>).
/// </summary>
public static partial class ThrivestackModelBuilderExtensions
{
    /// <summary>
    /// The longest user or group id, in characters, that gets an identify event: 1,000 (and at most 2,000 UTF-8 bytes).
    /// A longer id never fails the application's save; its event is left out with a warning, because the outbox
    /// indexes user ids and a database index entry is limited in size (PostgreSQL: about 2,700 bytes). Where the provider
    /// sizes the outbox's id columns (SQL Server: <c>nvarchar(450)</c> for an indexed string), that size is the limit.
    /// </summary>
    public static int MaxIdLength => 1000;

    /// <summary>
    /// Maps <typeparamref name="TEntity"/> as a ThriveStack user whose id is the property selected by
    /// <paramref name="userId"/>. An insert sends an identify event with the mapped traits; an update
    /// sends one when a mapped trait changed.
    /// </summary>
    /// <typeparam name="TEntity">The user entity type.</typeparam>
    /// <typeparam name="TKey">The id type: <see cref="Guid"/>, <see cref="int"/>, <see cref="long"/>, <see cref="string"/> (or a type with a value converter to one of them).</typeparam>
    /// <param name="builder">The entity type builder.</param>
    /// <param name="userId">The property that holds the user id, such as <c>u =&gt; u.Id</c>.</param>
    /// <returns>A builder to map traits with <c>HasTrait</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="userId"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="userId"/> is not a property access.</exception>
    /// <exception cref="InvalidOperationException"><typeparamref name="TEntity"/> is an owned type (map its owner instead).</exception>
    /// <remarks>
    /// A selected property that the model does not have, or an id type that is not supported, fails with an
    /// <see cref="InvalidOperationException"/> when EF builds the model, that is on the context's first use.
    /// </remarks>
    public static ThrivestackUserBuilder<TEntity> ToThrivestackUser<TEntity, TKey>(
        this EntityTypeBuilder<TEntity> builder,
        Expression<Func<TEntity, TKey>> userId)
        where TEntity : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(userId);
        return builder.ToThrivestackUser(MemberPath.From(userId));
    }

    /// <summary>
    /// Maps <typeparamref name="TEntity"/> as a ThriveStack user whose id is the (possibly shadow) property <paramref name="userIdProperty"/>.
    /// </summary>
    /// <typeparam name="TEntity">The user entity type.</typeparam>
    /// <param name="builder">The entity type builder.</param>
    /// <param name="userIdProperty">The name of the property that holds the user id.</param>
    /// <returns>A builder to map traits with <c>HasTrait</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="userIdProperty"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="userIdProperty"/> is empty or white space.</exception>
    /// <exception cref="InvalidOperationException">The entity type is an owned type (map its owner instead).</exception>
    public static ThrivestackUserBuilder<TEntity> ToThrivestackUser<TEntity>(this EntityTypeBuilder<TEntity> builder, string userIdProperty)
        where TEntity : class
    {
        SetUser(builder, userIdProperty);
        return new ThrivestackUserBuilder<TEntity>(builder);
    }

    /// <summary>
    /// Maps the entity type as a ThriveStack user whose id is the (possibly shadow) property <paramref name="userIdProperty"/>.
    /// </summary>
    /// <param name="builder">The entity type builder.</param>
    /// <param name="userIdProperty">The name of the property that holds the user id.</param>
    /// <returns>A builder to map traits with <c>HasTrait</c>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="userIdProperty"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="userIdProperty"/> is empty or white space.</exception>
    /// <exception cref="InvalidOperationException">The entity type is an owned type (map its owner instead).</exception>
    public static ThrivestackUserBuilder ToThrivestackUser(this EntityTypeBuilder builder, string userIdProperty)
    {
        SetUser(builder, userIdProperty);
        return new ThrivestackUserBuilder(builder);
    }

    /// <summary>
    /// Maps <typeparamref name="TEntity"/> as a membership: inserting one sends an identify event for
    /// the member's user id with <c>context.group_id</c> set to the workspace/account id.
    /// </summary>
    /// <typeparam name="TEntity">The membership entity type.</typeparam>
    /// <typeparam name="TUserId">The type of the user id.</typeparam>
    /// <typeparam name="TGroupId">The type of the workspace/account id.</typeparam>
    /// <param name="builder">The entity type builder.</param>
    /// <param name="userId">The property that holds the member's user id, such as <c>m =&gt; m.UserId</c>.</param>
    /// <param name="groupId">The property that holds the workspace/account id, such as <c>m =&gt; m.WorkspaceId</c>.</param>
    /// <returns>The same entity type builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/>, <paramref name="userId"/> or <paramref name="groupId"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="userId"/> or <paramref name="groupId"/> is not a property access.</exception>
    public static EntityTypeBuilder<TEntity> ToThrivestackMembership<TEntity, TUserId, TGroupId>(
        this EntityTypeBuilder<TEntity> builder,
        Expression<Func<TEntity, TUserId>> userId,
        Expression<Func<TEntity, TGroupId>> groupId)
        where TEntity : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(userId);
        ArgumentNullException.ThrowIfNull(groupId);
        SetMembership(builder, MemberPath.From(userId), MemberPath.From(groupId));
        return builder;
    }

    /// <summary>
    /// Maps the entity type as a membership, naming its (possibly shadow) user id and group id properties.
    /// </summary>
    /// <param name="builder">The entity type builder.</param>
    /// <param name="userIdProperty">The name of the property that holds the member's user id.</param>
    /// <param name="groupIdProperty">The name of the property that holds the workspace/account id.</param>
    /// <returns>The same entity type builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/>, <paramref name="userIdProperty"/> or <paramref name="groupIdProperty"/> is <see langword="null"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="userIdProperty"/> or <paramref name="groupIdProperty"/> is empty or white space.</exception>
    public static EntityTypeBuilder ToThrivestackMembership(this EntityTypeBuilder builder, string userIdProperty, string groupIdProperty)
    {
        ArgumentNullException.ThrowIfNull(builder);
        SetMembership(builder, userIdProperty, groupIdProperty);
        return builder;
    }

    internal static void AddTrait(EntityTypeBuilder builder, string propertyPath, string traitKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(propertyPath);
        ArgumentException.ThrowIfNullOrWhiteSpace(traitKey);
        var entityType = builder.Metadata;
        var user = MappingConfiguration.Of(entityType.Model).FindUser(entityType.Name)
            ?? throw new InvalidOperationException(
                $"'{entityType.DisplayName()}' maps traits but is not a ThriveStack user. Call ToThrivestackUser(u => u.Id) before HasTrait.");
        user.AddTrait(entityType.DisplayName(), propertyPath, traitKey);
    }

    private static void SetUser(EntityTypeBuilder builder, string userIdProperty)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(userIdProperty);
        if (builder.Metadata.IsOwned())
        {
            throw new InvalidOperationException(
                $"'{builder.Metadata.DisplayName()}' is an owned type and cannot be a ThriveStack user. Map its owner with ToThrivestackUser and the owned properties with HasTrait(u => u.Owned.Property, key).");
        }

        MappingConfiguration.Of(builder.Metadata.Model).SetUser(builder.Metadata.Name, userIdProperty);
    }

    private static void SetMembership(EntityTypeBuilder builder, string userIdProperty, string groupIdProperty)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(userIdProperty);
        ArgumentException.ThrowIfNullOrWhiteSpace(groupIdProperty);
        MappingConfiguration.Of(builder.Metadata.Model).SetMembership(builder.Metadata.Name, userIdProperty, groupIdProperty);
    }
}
