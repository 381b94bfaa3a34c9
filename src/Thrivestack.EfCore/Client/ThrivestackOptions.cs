namespace Thrivestack.EfCore;

/// <summary>
/// Settings of the identify dispatcher, bindable from the <c>Thrivestack</c> configuration section.
/// They are validated when the host starts; a mistake stops the start with a message naming the option.
/// </summary>
public sealed class ThrivestackOptions
{
    /// <summary>The configuration section the <c>IConfiguration</c> overload binds.</summary>
    public const string SectionName = "Thrivestack";

    /// <summary>Where batches are posted. The default value is <c>https://api.app.thrivestack.ai/api/identify</c>. Plain <c>http</c> is only allowed to loopback.</summary>
    public Uri Endpoint { get; set; } = new("https://api.app.thrivestack.ai/api/identify");

    /// <summary>The API token. Required unless <see cref="TokenProvider"/> is set. Never logged.</summary>
    public string? ApiToken { get; set; }

    /// <summary>Asked for a token before each request, and once more when the token is refused (401 or 403), when it threw or when it returned no token (for rotating OAuth tokens). Wins over <see cref="ApiToken"/>.</summary>
    public Func<CancellationToken, ValueTask<string>>? TokenProvider { get; set; }

    /// <summary>How the token is sent. The default value is <see cref="ThrivestackAuthHeader.Bearer"/>.</summary>
    public ThrivestackAuthHeader AuthHeader { get; set; } = ThrivestackAuthHeader.Bearer;

    /// <summary>Events per request, 1 to 1,000. The default value is 100.</summary>
    public int MaxEventsPerBatch { get; set; } = 100;

    /// <summary>Bytes of one serialized request body, from 1,024 to 2,000,000. The default value is 2,000,000.</summary>
    public int MaxBatchBytes { get; set; } = Client.ThrivestackLimits.MaxRequestBytes;

    /// <summary>How often the outbox is scanned for rows no in-process nudge announced (other processes, crashes). The default value is 1 second.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a claimed row belongs to one dispatcher. No send starts in its second half or goes on past nine tenths of it,
    /// so it must hold one request with its quick retries (see <see cref="RequestTimeout"/>). The default value is 1 minute.
    /// </summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Timeout of one HTTP attempt. A request with its quick retries must fit in nine tenths of <see cref="LeaseDuration"/>.
    /// The default value is 10 seconds.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The most requests one dispatcher keeps in flight, 1 to 64. The number actually in flight is found at run time: it
    /// grows while answers come back fast and successful and shrinks on 429, 503, timeouts and rising latency. 1 sends one
    /// request at a time. The default value is 8.
    /// </summary>
    public int MaxConcurrentRequests { get; set; } = 8;

    /// <summary>Quick retries of one request (exponential backoff with jitter) before its rows wait for a later attempt, from 0 to 10. The default value is 2.</summary>
    public int MaxRequestRetries { get; set; } = 2;

    /// <summary>The first wait between attempts of a row; doubles with each attempt, with jitter. The default value is 1 second.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between attempts of a row. The default value is 5 minutes.</summary>
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Failed transient attempts of a row before it is dead-lettered. The default value is 10.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>How long delivered rows stay in the outbox; zero deletes them on delivery. The default value is zero.</summary>
    public TimeSpan DeliveredRetention { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// Whether the dispatcher sends events. When <see langword="false"/> (for developers without a ThriveStack
    /// account) no token is required, nothing is sent, events stay in the outbox until sending is enabled, and one
    /// information line at start says so. The default value is <see langword="true"/>.
    /// </summary>
    public bool SendingEnabled { get; set; } = true;

    /// <summary>
    /// Says that this process only ships the outbox and the interceptor runs in another process, so the start-up
    /// check does not warn that the context's options lack <c>AddThrivestackIdentifyInterceptor()</c>.
    /// The default value is <see langword="false"/>.
    /// </summary>
    public bool CaptureRunsElsewhere { get; set; }
}
