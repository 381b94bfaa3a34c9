using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Whether an interceptor acts when a transaction is about to commit. Only such an interceptor forbids the outbox rows'
/// INSERT from committing the transaction itself (it expects the transaction open); one that only hears of commits
/// that happened (<c>TransactionCommitted</c>) is still told, by EF, after the rows committed it.
/// </summary>
internal static class CommitInterception
{
    private static readonly ConcurrentDictionary<Type, bool> Known = new();

    public static bool InterceptsCommitting(IInterceptor interceptor) =>
        interceptor is IDbTransactionInterceptor && Known.GetOrAdd(interceptor.GetType(), static type => Overrides(type));

    private static bool Overrides(Type type)
    {
        var map = type.GetInterfaceMap(typeof(IDbTransactionInterceptor));
        for (var i = 0; i < map.InterfaceMethods.Length; i++)
        {
            if (map.InterfaceMethods[i].Name is nameof(IDbTransactionInterceptor.TransactionCommitting) or nameof(IDbTransactionInterceptor.TransactionCommittingAsync)
                && map.TargetMethods[i].DeclaringType is { } declaring
                && declaring != typeof(IDbTransactionInterceptor) && declaring != typeof(DbTransactionInterceptor))
            {
                return true;
            }
        }

        return false;
    }
}
