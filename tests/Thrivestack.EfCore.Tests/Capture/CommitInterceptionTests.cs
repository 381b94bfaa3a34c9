using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Thrivestack.EfCore.Interception;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>Which interceptors keep the outbox rows from committing EF's transaction themselves (PostgreSQL).</summary>
public sealed class CommitInterceptionTests
{
    [Fact]
    public void InterceptsCommitting_OnlyListensToCommitted_IsFalse() =>
        Assert.False(CommitInterception.InterceptsCommitting(new ListensToCommitted()));

    [Fact]
    public void InterceptsCommitting_OverridesOnlyTheAsyncCommitting_IsTrue() =>
        Assert.True(CommitInterception.InterceptsCommitting(new ActsBeforeAsyncCommit()));

    [Fact]
    public void InterceptsCommitting_ImplementsTheInterfaceWithCommitting_IsTrue() =>
        Assert.True(CommitInterception.InterceptsCommitting(new ImplementsCommitting()));

    [Fact]
    public void InterceptsCommitting_SaveInterceptor_IsFalse() =>
        Assert.False(CommitInterception.InterceptsCommitting(new SaveInterceptor()));

    private sealed class SaveInterceptor : SaveChangesInterceptor;

    private sealed class ListensToCommitted : DbTransactionInterceptor
    {
        public override void TransactionCommitted(DbTransaction transaction, TransactionEndEventData eventData)
        {
        }
    }

    private sealed class ActsBeforeAsyncCommit : DbTransactionInterceptor
    {
        public override ValueTask<InterceptionResult> TransactionCommittingAsync(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(result);
    }

    private sealed class ImplementsCommitting : IDbTransactionInterceptor
    {
        public InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result) => result;
    }
}
