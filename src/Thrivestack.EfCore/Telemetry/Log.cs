using Microsoft.Extensions.Logging;

namespace Thrivestack.EfCore.Telemetry;

/// <summary>Every log line of the library: ids and counts, never trait values or the token.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Identify dispatcher for {Context} started as {Owner}, sending to {Endpoint}.")]
    public static partial void DispatcherStarted(ILogger logger, string context, string owner, string endpoint);

    [LoggerMessage(2, LogLevel.Information, "Identify dispatcher for {Context} stopped.")]
    public static partial void DispatcherStopped(ILogger logger, string context);

    [LoggerMessage(3, LogLevel.Debug, "Delivered identify events: {Count} ({Bytes} bytes) for {Context}; response {ResponseId}.")]
    public static partial void BatchDelivered(ILogger logger, int count, int bytes, string context, string? responseId);

    [LoggerMessage(4, LogLevel.Warning, "ThriveStack answered with warnings for rows {RowIds}: {Warnings}.")]
    public static partial void ResponseWarnings(ILogger logger, string rowIds, string warnings);

    [LoggerMessage(5, LogLevel.Warning, "Identify batch of {Count} events for {Context} failed ({Reason}); the rows are retried later.")]
    public static partial void BatchRetried(ILogger logger, int count, string context, string reason);

    [LoggerMessage(6, LogLevel.Error, "Identify event {RowId} of user {UserId} was dead-lettered: {Reason}.")]
    public static partial void EventDeadLettered(ILogger logger, long rowId, string userId, string reason);

    [LoggerMessage(EventId = 7, Message = "ThriveStack refused the API token ({Reason}); sending for {Context} is paused for {Pause}. No event loses an attempt while paused. Check Thrivestack:ApiToken or the TokenProvider.")]
    public static partial void SendingPaused(ILogger logger, LogLevel level, string reason, string context, string pause);

    [LoggerMessage(EventId = 8, Message = "ThriveStack accepted a request again; sending for {Context} resumed.")]
    public static partial void SendingResumed(ILogger logger, LogLevel level, string context);

    [LoggerMessage(9, LogLevel.Error, "The identify outbox of {Context} cannot be read or written; the dispatcher retries without a restart.")]
    public static partial void OutboxUnavailable(ILogger logger, Exception exception, string context);

    [LoggerMessage(10, LogLevel.Information, "The identify outbox of {Context} is reachable again after {Outage}.")]
    public static partial void OutboxRecovered(ILogger logger, string context, string outage);

    [LoggerMessage(11, LogLevel.Debug, "Cleaned up {Count} delivered identify rows of {Context}.")]
    public static partial void DeliveredCleanedUp(ILogger logger, int count, string context);

    [LoggerMessage(12, LogLevel.Warning, "Identify batch of {Count} events for {Context} was rejected ({Reason}); splitting it to find the bad events.")]
    public static partial void BatchSplit(ILogger logger, int count, string context, string reason);

    [LoggerMessage(301, LogLevel.Warning, "The ThriveStack identify interceptor is on a context whose database provider ({Provider}) does not run SQL, such as EF's InMemory provider: no identify events are captured for it. Saves work as usual. Use SQLite or another relational provider where events should be written.")]
    public static partial void CaptureUnsupportedProvider(ILogger logger, string provider);

    [LoggerMessage(302, LogLevel.Warning, "The identify event of {Entity} for user {UserId} ({Length} characters) is left out: a user or group id of more than {MaxLength} characters (or 2,000 UTF-8 bytes) cannot be stored in the outbox's indexed id columns. The save itself succeeded.")]
    public static partial void IdTooLong(ILogger logger, string entity, string userId, int length, int maxLength);

    [LoggerMessage(303, LogLevel.Warning, "A {Entity} was saved with an empty user id: no identify event is written, because ThriveStack cannot identify a user without an id.")]
    public static partial void EmptyUserId(ILogger logger, string entity);

    [LoggerMessage(304, LogLevel.Warning, "{Context} writes identify events into its outbox, but this process registered no dispatcher for it, so nothing here sends them and the outbox grows. Add services.AddThrivestackIdentify<{Context}>(...) in this process, or, when another process ships this outbox, say so with AddThrivestackIdentifyInterceptor(o => o.DispatchedElsewhere()).")]
    public static partial void OutboxNotDispatched(ILogger logger, string context);

    [LoggerMessage(305, LogLevel.Warning, "{Context} is dispatched, but its options have no ThriveStack interceptor, so this process writes no identify events. Add .AddThrivestackIdentifyInterceptor() to the options of AddDbContext<{Context}>(...). If another process writes the events, set ThrivestackOptions.CaptureRunsElsewhere = true.")]
    public static partial void StartupInterceptorMissing(ILogger logger, string context);

    [LoggerMessage(306, LogLevel.Information, "Sending identify events of {Context} is disabled (ThrivestackOptions.SendingEnabled is false): events are kept in the outbox and nothing is sent. Set Thrivestack:SendingEnabled to true and an API token to send them.")]
    public static partial void StartupSendingDisabled(ILogger logger, string context);

    [LoggerMessage(307, LogLevel.Error, "The model of {Context} has no identify outbox, so its dispatcher has nothing to ship. Call modelBuilder.AddThrivestackOutbox() in OnModelCreating and add a migration.")]
    public static partial void StartupOutboxNotMapped(ILogger logger, string context);

    [LoggerMessage(314, LogLevel.Information, "{Context} runs on {Provider}, which does not run SQL (such as EF's InMemory provider in tests): nothing is captured for it, and its identify dispatcher stays idle.")]
    public static partial void StartupProviderWithoutSql(ILogger logger, string context, string provider);

    [LoggerMessage(308, LogLevel.Error, "The identify outbox table '{Table}' of {Context} does not exist, so events cannot be written or sent. With migrations: dotnet ef migrations add AddThrivestackOutbox, then dotnet ef database update (or Database.Migrate() at start). With Database.EnsureCreated(): call Database.EnsureThrivestackOutboxCreated() after it.")]
    public static partial void StartupOutboxTableMissing(ILogger logger, string context, string table);

    [LoggerMessage(309, LogLevel.Warning, "Could not check the identify outbox of {Context} at start: the database did not answer. The host starts anyway; the dispatcher retries.")]
    public static partial void StartupDatabaseUnreachable(ILogger logger, Exception exception, string context);

    [LoggerMessage(310, LogLevel.Debug, "{Context} is dispatched but not registered in the services; its start-up checks are skipped.")]
    public static partial void StartupContextNotRegistered(ILogger logger, string context);

    [LoggerMessage(312, LogLevel.Warning, "A save of {Context} ran without identify events: another save interceptor turned ChangeTracker.AutoDetectChangesEnabled off during the save, so EF's change detection, at which the library captures when other save interceptors run, never ran. Turn it off before SaveChanges (the library then sees what the change tracker knows) or leave it on.")]
    public static partial void CaptureSkipped(ILogger logger, string context);

    [LoggerMessage(311, LogLevel.Error, "The start-up check of the identify outbox of {Context} failed unexpectedly; the host starts anyway. Please report this with the exception.")]
    public static partial void StartupCheckFailed(ILogger logger, Exception exception, string context);

    // ---- Backfill (issue 12): event ids 900-949 ----
    [LoggerMessage(900, LogLevel.Information, "Backfill {Name} of {Context} started as {Owner}: {Remaining} of about {Total} users and memberships left{Resumed}.")]
    public static partial void BackfillStarted(ILogger logger, string name, string context, string owner, long remaining, long total, string resumed);

    [LoggerMessage(901, LogLevel.Information, "Backfill {Name}: {Processed} of about {Total} users and memberships processed ({EntityType}), {Rate:F0} rows/s, about {Remaining} left.")]
    public static partial void BackfillProgressed(ILogger logger, string name, long processed, long total, string entityType, double rate, string remaining);

    [LoggerMessage(902, LogLevel.Information, "Backfill {Name} completed: {Users} user and {Memberships} membership events enqueued by this run in {Elapsed}.")]
    public static partial void BackfillCompleted(ILogger logger, string name, long users, long memberships, string elapsed);

    [LoggerMessage(903, LogLevel.Debug, "Backfill {Name} waits: more than {Limit} identify events are pending in the outbox.")]
    public static partial void BackfillWaiting(ILogger logger, string name, int limit);

    [LoggerMessage(904, LogLevel.Warning, "Backfill {Name} was canceled after {Users} user and {Memberships} membership events; run it again to continue from its checkpoint.")]
    public static partial void BackfillCanceled(ILogger logger, string name, long users, long memberships);

    [LoggerMessage(905, LogLevel.Debug, "Backfill {Name} could not lock the outbox quickly (a long transaction writes to it); the chunk is tried again.")]
    public static partial void BackfillChunkDeferred(ILogger logger, string name);

    [LoggerMessage(906, LogLevel.Error, "Backfill {Name} stopped after {Users} user and {Memberships} membership events; run it again to continue from its checkpoint.")]
    public static partial void BackfillFailed(ILogger logger, Exception exception, string name, long users, long memberships);

    [LoggerMessage(907, LogLevel.Debug, "Backfill {Name}: {Chunks} chunks, {Rereads} of them read again under the write lock because an event was written after their first read; last chunk size {ChunkSize}.")]
    public static partial void BackfillChunksCompleted(ILogger logger, string name, long chunks, long rereads, int chunkSize);
    [LoggerMessage(908, LogLevel.Information, "Backfill {Name} has waited {Waited} for delivery: {Pending} identify events are pending in the outbox of {Context}, more than MaxPendingEvents ({Limit}). It goes on once a dispatcher has delivered them; one must run for {Context}, in this process or another (services.AddThrivestackIdentify<{Context}>(...)). Or raise ThrivestackBackfillOptions.MaxPendingEvents.")]
    public static partial void BackfillStillWaiting(ILogger logger, string name, string waited, long pending, string context, int limit);

    [LoggerMessage(909, LogLevel.Warning, "Backfill {Name} has waited {Waited} for delivery, and the backlog has not gone down for {Flat}: {Pending} identify events are pending in the outbox of {Context}, more than MaxPendingEvents ({Limit}). Is a dispatcher for {Context} running, in this process or another (services.AddThrivestackIdentify<{Context}>(...)), and is it sending (see its logs)? Or raise ThrivestackBackfillOptions.MaxPendingEvents.")]
    public static partial void BackfillStalled(ILogger logger, string name, string waited, string flat, long pending, string context, int limit);

    [LoggerMessage(910, LogLevel.Warning, "Backfill {Name} enqueues identify events into the outbox of {Context}, but this process registered no dispatcher for it: only a dispatcher in another process (the app) sends them, and while more than MaxPendingEvents ({Limit}) are pending the backfill waits for one. Add services.AddThrivestackIdentify<{Context}>(...) in this process, or, when another process ships this outbox, say so with AddThrivestackIdentifyInterceptor(o => o.DispatchedElsewhere()).")]
    public static partial void BackfillNotDispatched(ILogger logger, string name, string context, int limit);
    // ---- end of Backfill ----

    // The dispatcher's loop (ids 30-39).
    [LoggerMessage(44, LogLevel.Information, "The identify dispatcher for {Context} stays idle: its context does not run SQL or its model has no identify outbox (see the start-up check's message).")]
    public static partial void DispatcherIdle(ILogger logger, string context);

    [LoggerMessage(30, LogLevel.Error, "The identify dispatcher for {Context} failed unexpectedly (a bug; please report it); it goes on in {Pause}.")]
    public static partial void DispatcherFailedUnexpectedly(ILogger logger, Exception exception, string context, string pause);

    [LoggerMessage(EventId = 31, Message = "ThriveStack's answer at {Endpoint} means the configuration is wrong ({Reason}); sending for {Context} is paused for {Pause}. No event loses an attempt while paused. Check Thrivestack:Endpoint.")]
    public static partial void SendingMisconfigured(ILogger logger, LogLevel level, string endpoint, string reason, string context, string pause);

    [LoggerMessage(EventId = 32, Message = "Identify requests for {Context} fail ({Reason}) and none succeeds: ThriveStack looks unavailable{Hint}. Sending backs off for {Pause}; no event spends an attempt.")]
    public static partial void SendingBackedOff(ILogger logger, LogLevel level, string context, string reason, string hint, string pause);

    [LoggerMessage(34, LogLevel.Debug, "Giving {Count} unsent identify rows of {Context} back failed; they return when their lease ends.")]
    public static partial void ReleaseFailed(ILogger logger, Exception exception, int count, string context);

    [LoggerMessage(33, LogLevel.Warning, "Identify batch of {Count} events for {Context} was refused ({Reason}); splitting it to find the events that cause it.")]
    public static partial void BatchIsolated(ILogger logger, int count, string context, string reason);

    [LoggerMessage(35, LogLevel.Debug, "ThriveStack answered 429 to a batch of {Count} events for {Context} sent with {InFlight} requests in flight; the rows go back unsent and fewer requests are kept in flight.")]
    public static partial void BatchThrottled(ILogger logger, int count, string context, int inFlight);

    [LoggerMessage(36, LogLevel.Warning, "A batch of {Count} events for {Context} got no answer before its lease ({Lease}) ran out; the request was abandoned and the rows released, to be sent again.")]
    public static partial void SendOutlivedLease(ILogger logger, int count, string context, string lease);

    [LoggerMessage(37, LogLevel.Warning, "{Lost} of {Named} rows to be marked {Outcome} for {Context} were no longer leased to this dispatcher (its lease ended and another one took them); they are not counted as {Outcome} here.")]
    public static partial void LeaseLostBeforeAcknowledgement(ILogger logger, int lost, int named, string outcome, string context);

    [LoggerMessage(38, LogLevel.Information, "Another dispatcher holds the outbox lease of {Context} on this SQLite database and ships its events; this one stands by and takes over when that lease ends or is given back.")]
    public static partial void StandingBy(ILogger logger, string context);

    [LoggerMessage(39, LogLevel.Information, "This dispatcher took over the outbox lease of {Context} and ships its events.")]
    public static partial void OutboxLeaseTaken(ILogger logger, string context);

    [LoggerMessage(40, LogLevel.Debug, "Could not give back the outbox lease of {Context} while stopping; it ends by itself.")]
    public static partial void OutboxLeaseReleaseFailed(ILogger logger, Exception exception, string context);

    [LoggerMessage(41, LogLevel.Information, "The planner statistics of the outbox of {Context} counted {Estimate:N0} pending rows while a claim took {Claimed:N0}: refreshed them (ANALYZE, now {Refreshed:N0}, {Milliseconds:N0} ms), as PostgreSQL plans claims on stale ones badly.")]
    public static partial void OutboxStatisticsRefreshed(ILogger logger, string context, double estimate, double refreshed, int claimed, double milliseconds);

    [LoggerMessage(42, LogLevel.Debug, "Could not refresh the planner statistics of the outbox of {Context}; autovacuum will.")]
    public static partial void OutboxStatisticsRefreshFailed(ILogger logger, Exception exception, string context);

    [LoggerMessage(43, LogLevel.Debug, "The planner statistics of the outbox of {Context} counted {Estimate:N0} pending rows while a claim took {Claimed:N0}; the server skipped the ANALYZE (a role that does not own the table, or autovacuum at work on it); autovacuum will refresh them.")]
    public static partial void OutboxStatisticsNotRefreshed(ILogger logger, string context, double estimate, int claimed);

    [LoggerMessage(45, LogLevel.Debug, "An identify request of {Context} answered {Failure}; it was sent {When}, so it describes ThriveStack as it was and sending neither backs off nor pauses further for it.")]
    public static partial void StaleFailureIgnored(ILogger logger, string context, string failure, string when);

    [LoggerMessage(46, LogLevel.Warning, "Identify requests for {Context} fail again ({Reason}) soon after sending resumed (recurrence {Recurrences}, recurring since {Since:u}): ThriveStack refuses some requests while it takes others (a rate limit, one node of a cluster). Each time sending backs off (as long as the backoff or Retry-After says) and no event spends an attempt; these backoffs and their ends are logged at Debug, with this line each hour they go on, until {Window} pass without one. One that lasts {Window} logs warning 32 again.")]
    public static partial void BackoffsRecur(ILogger logger, string context, string reason, int recurrences, DateTimeOffset since, string window);

    [LoggerMessage(47, LogLevel.Error, "Sending for {Context} paused again ({Reason}) soon after it resumed (recurrence {Recurrences}, recurring since {Since:u}): ThriveStack, or something on the way to it, refuses some requests while it takes others (a token rotation half done, one node of a cluster or a proxy answering for it). Each time sending pauses and no event spends an attempt; these pauses and their ends are logged at Debug, with this line each hour they go on, until {Window} pass without one. One that lasts {Window} logs its own error again. Check Thrivestack:ApiToken, the TokenProvider and Thrivestack:Endpoint.")]
    public static partial void PausesRecur(ILogger logger, string context, string reason, int recurrences, DateTimeOffset since, string window);

    [LoggerMessage(313, LogLevel.Error, "The table '{Table}' of {Context} does not exist: backfill cannot keep its checkpoints, and on SQLite the dispatcher cannot hold the outbox lease, so no event is sent. It comes with modelBuilder.AddThrivestackOutbox(). With migrations: dotnet ef migrations add AddThrivestackBackfill, then dotnet ef database update. With Database.EnsureCreated(): call Database.EnsureThrivestackOutboxCreated() after it.")]
    public static partial void StartupCoordinationTableMissing(ILogger logger, string context, string table);
}
