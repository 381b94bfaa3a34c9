using Microsoft.Extensions.DependencyInjection;

namespace Thrivestack.EfCore;

/// <summary>
/// Returned by <c>AddThrivestackIdentify</c>: what an application may extend in one context's identify dispatcher.
/// </summary>
public sealed class ThrivestackIdentifyBuilder
{
    private readonly string optionsName;

    internal ThrivestackIdentifyBuilder(IServiceCollection services, IHttpClientBuilder httpClient, string optionsName)
    {
        Services = services;
        HttpClient = httpClient;
        this.optionsName = optionsName;
    }

    /// <summary>Gets the service collection the dispatcher was added to.</summary>
    public IServiceCollection Services { get; }

    /// <summary>
    /// Gets the builder of the dispatcher's own named <see cref="System.Net.Http.HttpClient"/>. Handlers that
    /// <c>ConfigureHttpClientDefaults</c> adds to every client are removed from it, so the library alone decides how it
    /// sends, retries and times out; handlers added here on purpose (for example with <c>AddHttpMessageHandler</c>) do run.
    /// </summary>
    public IHttpClientBuilder HttpClient { get; }

    /// <summary>
    /// Configures the options with a service from the container, for example a token provider that needs one.
    /// </summary>
    /// <typeparam name="TDep">The service the configuration needs.</typeparam>
    /// <param name="configure">Sets the options from the service.</param>
    /// <returns>The same builder, so calls can be chained.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="configure"/> is <see langword="null"/>.</exception>
    public ThrivestackIdentifyBuilder Configure<TDep>(Action<ThrivestackOptions, TDep> configure)
        where TDep : class
    {
        ArgumentNullException.ThrowIfNull(configure);
        Services.AddOptions<ThrivestackOptions>(optionsName).Configure(configure);
        return this;
    }
}
