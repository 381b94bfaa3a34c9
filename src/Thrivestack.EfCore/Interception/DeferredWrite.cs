namespace Thrivestack.EfCore.Interception;

/// <summary>Where a save's outbox rows are written, so that they share the change's transaction.</summary>
internal enum DeferredWrite
{
    None,

    /// <summary>In EF's own SaveChanges transaction, just before it commits (keys are known by then).</summary>
    AtCommit,

    /// <summary>In the application's open transaction, right after SaveChanges returns.</summary>
    AfterSave,

    /// <summary>Tracked in EF's own batch: no transaction follows EF's commands (AutoTransactionBehavior.Never, TransactionScope).</summary>
    InSaveBatch,
}
