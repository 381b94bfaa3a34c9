using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Npgsql;
using Thrivestack.EfCore.IntegrationTests.Infrastructure;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.IntegrationTests.Capture;

/// <summary>Saves under Npgsql's retrying execution strategy (EnableRetryOnFailure): store-generated keys, and signups whose rows ride in EF's command.</summary>
[Collection(PostgresCollection.Name)]
public sealed class RetryingStrategyCaptureTests(PostgresServer server) : PostgresSchemaTests(server)
{
    [Fact]
    public async Task SaveChanges_IdentityUserUnderRetryingStrategy_WritesRealKeyAtomically()
    {
        var user = new NumberedUser { Email = "retry@example.com" };
        await using (var context = Retrying())
        {
            context.Members.Add(new WorkspaceMember { User = user, Workspace = new Workspace { Name = "Retry" } });
            await context.SaveChangesAsync();
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        Assert.Equal(user.Id.ToString(CultureInfo.InvariantCulture), row.UserId);
    }

    [Fact]
    public async Task SaveChanges_IdentityUserInStrategyWrappedTransaction_WritesRealKeyOnCommit()
    {
        var user = new NumberedUser { Email = "wrapped@example.com" };
        await using (var context = Retrying())
        {
            var strategy = context.Database.CreateExecutionStrategy();
            await strategy.ExecuteAsync(async () =>
            {
                await using var transaction = await context.Database.BeginTransactionAsync();
                context.NumberedUsers.Add(user);
                await context.SaveChangesAsync();
                await transaction.CommitAsync();
            });
        }

        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        Assert.Equal(user.Id.ToString(CultureInfo.InvariantCulture), row.UserId);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SaveChanges_SignupRetriedAfterTransientFailure_EachAttemptCarriesTheRowsAndOneIsWritten(bool async)
    {
        // A one-user signup runs as one command without a transaction, its row appended to it; the strategy runs the
        // command again after the failure, and the row must go with the attempt that reaches the server.
        var user = new AppUser { Id = Guid.NewGuid(), Email = "transient@example.com" };
        var failOnce = new FailFirstSaveCommand();
        await using (var context = Retrying(failOnce))
        {
            context.Users.Add(user);
            if (async)
            {
                await context.SaveChangesAsync();
            }
            else
            {
                context.SaveChanges();
            }
        }

        Assert.Equal(2, failOnce.Attempts);
        var row = Assert.Single(await OutboxReader.RowsAsync(Database));
        Assert.Equal(user.Id.ToString("D"), row.UserId);
    }

    private TestDbContext Retrying(params IInterceptor[] interceptors) =>
        new(new DbContextOptionsBuilder<TestDbContext>()
            .UseNpgsql(Database.ConnectionString, o => o.EnableRetryOnFailure())
            .AddThrivestackIdentifyInterceptor()
            .AddInterceptors(interceptors)
            .Options);

    /// <summary>Fails the first save command before it is sent, as a dropped connection would (a transient error).</summary>
    private sealed class FailFirstSaveCommand : DbCommandInterceptor
    {
        public int Attempts { get; private set; }

        public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
        {
            Fail(command, eventData);
            return result;
        }

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(
            DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Fail(command, eventData);
            return ValueTask.FromResult(result);
        }

        private void Fail(DbCommand command, CommandEventData eventData)
        {
            if (eventData.CommandSource != CommandSource.SaveChanges)
            {
                return;
            }

            Assert.Contains("INSERT INTO thrivestack_outbox", command.CommandText, StringComparison.Ordinal);
            if (++Attempts == 1)
            {
                throw new NpgsqlException("The connection dropped (injected).", new IOException("injected"));
            }
        }
    }
}
