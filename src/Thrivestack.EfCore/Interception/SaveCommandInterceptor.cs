using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Puts a save's rows into EF's command when EF runs the save as one command without a transaction, where the provider
/// runs a command's statements in one implicit transaction (<see cref="SaveState.AppendToSaveCommand"/>, PostgreSQL):
/// a signup then costs the round trip it costs without the library. Registered only for such providers, so the
/// commands of other providers pass no interceptor of this library.
/// </summary>
internal sealed class SaveCommandInterceptor : IDbCommandInterceptor
{
    private static readonly SaveCommandInterceptor Instance = new();

    private SaveCommandInterceptor()
    {
    }

    /// <summary>This interceptor where the context's provider appends to save commands; else an interceptor of nothing.</summary>
    public static IInterceptor For(IServiceProvider internalServices) =>
        OutboxDialect.For(internalServices.GetRequiredService<IDatabaseProvider>().Name).AppendsToSaveCommand ? Instance : NoInterceptor.Instance;

    public InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
    {
        IntoSaveCommand(command, eventData, result.HasResult);
        return result;
    }

    public ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
        DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        IntoSaveCommand(command, eventData, result.HasResult);
        return ValueTask.FromResult(result);
    }

    public InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        IntoSaveCommand(command, eventData, result.HasResult);
        return result;
    }

    public ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(
        DbCommand command, CommandEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        IntoSaveCommand(command, eventData, result.HasResult);
        return ValueTask.FromResult(result);
    }

    /// <summary>
    /// A save's command that EF runs without a transaction is the save's only command. Every other command (queries,
    /// commands in a transaction) costs a comparison here.
    /// </summary>
    private static void IntoSaveCommand(DbCommand command, CommandEventData eventData, bool suppressed)
    {
        if (eventData.CommandSource == CommandSource.SaveChanges && !suppressed && command.Transaction is null && eventData.Context is { } context
            && SaveLifecycle.Active(context) is { AppendToSaveCommand: true, Mode: DeferredWrite.AtCommit } state)
        {
            CapturedRowWriter.IntoSaveCommand(context, command, state);
        }
    }

    /// <summary>Registered in place of the interceptor for providers that do not append: part of no interceptor aggregate.</summary>
    private sealed class NoInterceptor : IInterceptor
    {
        public static readonly NoInterceptor Instance = new();
    }
}
