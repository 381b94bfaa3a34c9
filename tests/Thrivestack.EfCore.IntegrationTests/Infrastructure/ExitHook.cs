using System.Runtime.InteropServices;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

/// <summary>Runs a cleanup when the process exits without disposing it, including on SIGTERM.</summary>
internal sealed class ExitHook : IDisposable
{
    private readonly Action cleanup;
    private readonly PosixSignalRegistration sigterm;

    public ExitHook(Action cleanup)
    {
        this.cleanup = cleanup;
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        // The test host does not raise ProcessExit on SIGTERM (e.g. a cancelled CI job).
        sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => Run());
    }

    public void Dispose()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        sigterm.Dispose();
    }

    private void OnProcessExit(object? sender, EventArgs e) => Run();

    private void Run()
    {
        try
        {
            cleanup();
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            // The process is ending; nothing useful to do with it.
        }
    }
}
