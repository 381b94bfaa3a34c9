using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.Logging;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Telemetry;

namespace Thrivestack.EfCore.Interception;

/// <summary>
/// Decides when a save's changes are captured. Alone among save interceptors, this library detects changes once itself
/// and keeps EF's own pass off (the fast path); when other save interceptors follow, it captures at EF's own
/// DetectChanges instead, after all of them, and warns when that pass never came.
/// </summary>
/// <param name="owner">The interceptor this policy belongs to, to tell it apart from other interceptors in EF's services.</param>
internal sealed class ChangeDetectionPolicy(IInterceptor owner)
{
    /// <summary>
    /// Whether EF's internal services hold another save interceptor: -1 not known yet, 0 no, 1 yes. A fact of the
    /// internal service provider the owning interceptor is a singleton of.
    /// </summary>
    private int injectedOthers = -1;

    /// <summary>
    /// Starts the capture of a save (EF's <c>SavingChanges</c>), now or at EF's own DetectChanges. Returns the save's
    /// state when it captured rows now (null otherwise), so the caller need not look it up again.
    /// </summary>
    public SaveState? Capture(DbContext context)
    {
        var map = ModelMap.For(context.Model);
        if (map.Outbox is null)
        {
            return null;
        }

        var state = SaveState.Of(context)!;
        if (state.InProgress)
        {
            // The previous save ended without any callback we could see; start clean.
            SaveLifecycle.Abandon(context);
        }

        var tracker = context.ChangeTracker;
        var autoDetect = tracker.AutoDetectChangesEnabled;
        var facts = OptionsFacts.Of(context, state);
        var othersFollow = facts.ConfiguresSaveInterceptor || !IsOnlyInjectedSaveInterceptor(context);
        if (autoDetect && othersFollow)
        {
            // EF runs this library's interceptor before every interceptor added with AddInterceptors, and those may
            // still change, insert or remove entities (auditing, domain events). Capture at EF's own DetectChanges,
            // which runs after all of them and right before the update pipeline reads the entries, so the events
            // carry what is written. An interceptor that enumerates Entries() triggers an earlier pass: each pass
            // captures afresh, the last one wins.
            SaveLifecycle.Begin(context, state);
            state.CaptureAtDetectChanges = true;
            tracker.DetectedAllChanges += OnDetectedAllChanges;
            return null;
        }

        var keepDetectionOff = false;
        try
        {
            // EF detects changes only after SaveChanges interceptors ran (efcore#35989): do it once here.
            if (autoDetect)
            {
                tracker.DetectChanges();
                tracker.AutoDetectChangesEnabled = false;
            }

            EventCapture.Record(context, state, map, facts);
            // EF's own pass would find nothing new: no other save interceptor follows (checked above), and this save's
            // rows are not tracked. Detection stays off until the save ends (SavedChanges, Failed, Canceled); not when
            // rows ride in EF's batch (AutoTransactionBehavior.Never, TransactionScope).
            keepDetectionOff = autoDetect && state.Mode != DeferredWrite.InSaveBatch;
            if (keepDetectionOff)
            {
                SaveLifecycle.Begin(context, state);
                state.RestoreDetectChanges = true;
            }
        }
        catch
        {
            keepDetectionOff = false;
            SaveLifecycle.Abandon(context);
            throw;
        }
        finally
        {
            if (!keepDetectionOff)
            {
                tracker.AutoDetectChangesEnabled = autoDetect;
            }
        }

        return state.HasRows ? state : null;
    }

    /// <summary>The save went through (EF's <c>SavedChanges</c>): detection back on, and a word if the capture never ran.</summary>
    public static void Saved(DbContext context, SaveState state)
    {
        RestoreDetectChanges(context, state);
        WarnIfNeverCaptured(context, state);
    }

    /// <summary>The save ends, however it ended: undo what this policy changed on the context.</summary>
    public static void Release(DbContext context, SaveState state)
    {
        if (state.CaptureAtDetectChanges)
        {
            context.ChangeTracker.DetectedAllChanges -= OnDetectedAllChanges;
        }

        RestoreDetectChanges(context, state);
    }

    private static void OnDetectedAllChanges(object? sender, DetectedChangesEventArgs args)
    {
        if (sender is not ChangeTracker tracker || SaveLifecycle.Active(tracker.Context) is not { CaptureAtDetectChanges: true } state)
        {
            return;
        }

        // Entries() would detect changes again and raise this event inside itself.
        state.CapturedAtDetectChanges = true;
        tracker.AutoDetectChangesEnabled = false;
        try
        {
            EventCapture.Uncapture(tracker.Context, state);
            EventCapture.Record(tracker.Context, state, ModelMap.For(tracker.Context.Model), state.Facts!);

            // EF's commands follow this pass at once; synchronously, as DetectChanges is, also in an async save.
            BatchWriterLock.Take(tracker.Context, state);
        }
        catch
        {
            SaveLifecycle.Abandon(tracker.Context);
            throw;
        }
        finally
        {
            tracker.AutoDetectChangesEnabled = true;
        }
    }

    /// <summary>
    /// True when no other save interceptor is in EF's internal services (those added with <c>AddInterceptors</c>
    /// are in <see cref="OptionsFacts.ConfiguresSaveInterceptor"/>).
    /// </summary>
    private bool IsOnlyInjectedSaveInterceptor(DbContext context)
    {
        if (injectedOthers < 0)
        {
            var seen = false;
            var others = false;
            foreach (var interceptor in context.GetService<IEnumerable<IInterceptor>>())
            {
                if (ReferenceEquals(interceptor, owner))
                {
                    seen = true;
                }
                else if (interceptor is ISaveChangesInterceptor)
                {
                    others = true;
                }
            }

            // Not found in the list: an arrangement this code does not know; keep EF's own pass.
            injectedOthers = seen && !others ? 0 : 1;
        }

        return injectedOthers == 0;
    }

    /// <summary>
    /// A later interceptor turned automatic change detection off during the save, so EF's own pass, which this save's
    /// capture waited for, never ran: the save went through without events. Say so instead of staying silent.
    /// </summary>
    private static void WarnIfNeverCaptured(DbContext context, SaveState state)
    {
        if (state.CaptureAtDetectChanges && !state.CapturedAtDetectChanges)
        {
            Log.CaptureSkipped(context.GetService<ILoggerFactory>().CreateLogger<ThrivestackIdentifyInterceptor>(), context.GetType().Name);
        }
    }

    private static void RestoreDetectChanges(DbContext context, SaveState state)
    {
        if (state.RestoreDetectChanges)
        {
            state.RestoreDetectChanges = false;
            context.ChangeTracker.AutoDetectChangesEnabled = true;
        }
    }
}
