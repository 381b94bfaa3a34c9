using System.Data.Common;
using Microsoft.Data.Sqlite;
using Thrivestack.EfCore.Outbox;

namespace Thrivestack.EfCore.Tests.Outbox;

/// <summary>
/// A missing table is blamed on the outbox (and answered with how to create it) only when the database names exactly the
/// outbox: an outbox named <c>events</c> is not what is missing when the app's own <c>user_events</c> is.
/// </summary>
public sealed class MissingOutboxTableTests
{
    [Theory]
    [InlineData("SQLite Error 1: 'no such table: events'.")]
    [InlineData("SQLite Error 1: 'no such table: main.events'.")]
    [InlineData("42P01: relation \"events\" does not exist")]
    [InlineData("42P01: relation \"app.events\" does not exist")]
    [InlineData("Invalid object name 'dbo.events'.")]
    [InlineData("Table 'shop.events' doesn't exist")]
    public void Is_DatabaseNamesTheTable_IsTheMissingTable(string message) =>
        Assert.True(MissingOutboxTable.Is("events", new ProviderException(message)));

    [Theory]
    [InlineData("SQLite Error 1: 'no such table: user_events'.")]
    [InlineData("42P01: relation \"user_events\" does not exist")]
    [InlineData("42P01: relation \"events_archive\" does not exist")]
    [InlineData("Invalid object name 'dbo.user_events'.")]
    [InlineData("Table 'shop.user_events' doesn't exist")]
    [InlineData("SQLite Error 1: 'no such column: events'.")]
    [InlineData("23505: duplicate key value violates unique constraint \"events_pkey\"")]
    public void Is_DatabaseNamesAnotherTableOrAnotherError_IsNotTheMissingTable(string message) =>
        Assert.False(MissingOutboxTable.Is("events", new ProviderException(message)));

    [Fact]
    public void Is_SqliteExceptionOfAnAppTableWhoseNameContainsTheOutboxName_IsNotTheMissingTable() =>
        Assert.False(MissingOutboxTable.Is("events", new SqliteException("SQLite Error 1: 'no such table: user_events'.", 1)));

    private sealed class ProviderException(string message) : DbException(message);
}
