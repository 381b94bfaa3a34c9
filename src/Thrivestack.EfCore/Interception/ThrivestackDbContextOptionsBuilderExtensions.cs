using Microsoft.EntityFrameworkCore.Infrastructure;
using Thrivestack.EfCore;
using Thrivestack.EfCore.Interception;

namespace Microsoft.EntityFrameworkCore;

/// <summary>Registers the ThriveStack identify interceptor on a <see cref="DbContextOptionsBuilder"/>.</summary>
public static class ThrivestackDbContextOptionsBuilderExtensions
{
    /// <summary>
    /// Adds the interceptor that writes identify events for mapped users and memberships into the outbox,
    /// in the same transaction as the change. Calling it more than once registers one interceptor.
    /// Works with <c>AddDbContext</c>, <c>AddDbContextPool</c> and contexts created with <c>new</c>.
    /// </summary>
    /// <param name="optionsBuilder">The context's options builder.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="optionsBuilder"/> is <see langword="null"/>.</exception>
    /// <remarks>
    /// Event timestamps come from the application's registered <see cref="TimeProvider"/>, else <see cref="TimeProvider.System"/>.
    /// A save that inserts users or memberships with store-generated ids outside a transaction of the context's own throws
    /// (from <c>SaveChanges</c>) <see cref="InvalidOperationException"/> when <c>Database.AutoTransactionBehavior</c> is
    /// <c>Never</c>, and <see cref="NotSupportedException"/> inside an ambient <c>TransactionScope</c>: no transaction could hold
    /// the change and its event together.
    /// </remarks>
    public static DbContextOptionsBuilder AddThrivestackIdentifyInterceptor(this DbContextOptionsBuilder optionsBuilder) =>
        AddExtension(optionsBuilder, null);

    /// <summary>
    /// Adds the identify interceptor with settings, such as
    /// <c>AddThrivestackIdentifyInterceptor(o =&gt; o.DispatchedElsewhere())</c>. Calling it more than once registers
    /// one interceptor; a later call keeps the settings of earlier ones and adds its own.
    /// </summary>
    /// <param name="optionsBuilder">The context's options builder.</param>
    /// <param name="configure">Sets the interceptor's settings.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="optionsBuilder"/> or <paramref name="configure"/> is <see langword="null"/>.</exception>
    public static DbContextOptionsBuilder AddThrivestackIdentifyInterceptor(
        this DbContextOptionsBuilder optionsBuilder,
        Action<ThrivestackInterceptorOptionsBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return AddExtension(optionsBuilder, configure);
    }

    /// <summary>
    /// Adds the identify interceptor; the typed overload keeps a <see cref="DbContextOptionsBuilder{TContext}"/> chain typed.
    /// Calling it more than once registers one interceptor.
    /// </summary>
    /// <typeparam name="TContext">The context type.</typeparam>
    /// <param name="optionsBuilder">The context's options builder.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="optionsBuilder"/> is <see langword="null"/>.</exception>
    public static DbContextOptionsBuilder<TContext> AddThrivestackIdentifyInterceptor<TContext>(this DbContextOptionsBuilder<TContext> optionsBuilder)
        where TContext : DbContext =>
        (DbContextOptionsBuilder<TContext>)AddExtension(optionsBuilder, null);

    /// <summary>
    /// Adds the identify interceptor with settings; the typed overload keeps the chain typed. A later call keeps the
    /// settings of earlier ones and adds its own.
    /// </summary>
    /// <typeparam name="TContext">The context type.</typeparam>
    /// <param name="optionsBuilder">The context's options builder.</param>
    /// <param name="configure">Sets the interceptor's settings.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="optionsBuilder"/> or <paramref name="configure"/> is <see langword="null"/>.</exception>
    public static DbContextOptionsBuilder<TContext> AddThrivestackIdentifyInterceptor<TContext>(
        this DbContextOptionsBuilder<TContext> optionsBuilder,
        Action<ThrivestackInterceptorOptionsBuilder> configure)
        where TContext : DbContext
    {
        ArgumentNullException.ThrowIfNull(configure);
        return (DbContextOptionsBuilder<TContext>)AddExtension(optionsBuilder, configure);
    }

    private static DbContextOptionsBuilder AddExtension(DbContextOptionsBuilder optionsBuilder, Action<ThrivestackInterceptorOptionsBuilder>? configure)
    {
        ArgumentNullException.ThrowIfNull(optionsBuilder);

        // Clone what an earlier call set (efcore.pg's NpgsqlOptionsExtension): a second call must not lose it.
        var builder = new ThrivestackInterceptorOptionsBuilder(
            optionsBuilder.Options.FindExtension<ThrivestackIdentifyOptionsExtension>() ?? new ThrivestackIdentifyOptionsExtension());
        configure?.Invoke(builder);
        ((IDbContextOptionsBuilderInfrastructure)optionsBuilder).AddOrUpdateExtension(builder.Extension);
        return optionsBuilder;
    }
}
