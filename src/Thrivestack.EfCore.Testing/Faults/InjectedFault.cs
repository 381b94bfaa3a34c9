namespace Thrivestack.EfCore.Testing.Faults;

/// <summary>The answer a fault setting chose for one request; <see cref="StatusCode"/> 200 means <c>success: false</c>.</summary>
internal sealed record InjectedFault(int StatusCode, string Message, TimeSpan? RetryAfter);
