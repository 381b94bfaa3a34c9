namespace Thrivestack.EfCore.Hosting;

/// <summary>A context type whose outbox this host dispatches, with the name of its options.</summary>
internal sealed record DispatchedContext(Type ContextType, string OptionsName);
