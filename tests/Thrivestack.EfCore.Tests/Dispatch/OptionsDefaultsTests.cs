using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Thrivestack.EfCore.Client;
using Thrivestack.EfCore.Dispatch;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Dispatch;

/// <summary>The defaults of the README's Options table, and that an app which sets only a token starts with them.</summary>
public sealed class OptionsDefaultsTests
{
    private const string Token = "tok-defaults-41c7e2";

    [Fact]
    public void ThrivestackOptions_New_HasTheDefaultsTheReadmeStates()
    {
        var options = new ThrivestackOptions();

        Assert.Equal(new Uri("https://api.app.thrivestack.ai/api/identify"), options.Endpoint);
        Assert.Null(options.ApiToken);
        Assert.Null(options.TokenProvider);
        Assert.Equal(ThrivestackAuthHeader.Bearer, options.AuthHeader);
        Assert.Equal(100, options.MaxEventsPerBatch);
        Assert.Equal(2_000_000, options.MaxBatchBytes);
        Assert.Equal(TimeSpan.FromSeconds(1), options.PollInterval);
        Assert.Equal(8, options.MaxConcurrentRequests);
        Assert.Equal(TimeSpan.FromMinutes(1), options.LeaseDuration);
        Assert.Equal(TimeSpan.FromSeconds(10), options.RequestTimeout);
        Assert.Equal(2, options.MaxRequestRetries);
        Assert.Equal(TimeSpan.FromSeconds(1), options.RetryBaseDelay);
        Assert.Equal(TimeSpan.FromMinutes(5), options.RetryMaxDelay);
        Assert.Equal(10, options.MaxAttempts);
        Assert.Equal(TimeSpan.Zero, options.DeliveredRetention);
        Assert.True(options.SendingEnabled);
        Assert.False(options.CaptureRunsElsewhere);
    }

    [Fact]
    public void Validate_DefaultsWithAnApiToken_Succeeds()
    {
        var options = new ThrivestackOptions { ApiToken = Token };

        var result = new ThrivestackOptionsValidator().Validate(ThrivestackRegistration.OptionsName<TestDbContext>(), options);

        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void AddThrivestackIdentify_OnlyAnApiToken_ResolvesValidatedOptionsWithTheDefaults()
    {
        var services = new ServiceCollection();
        services.AddThrivestackIdentify<TestDbContext>(o => o.ApiToken = Token);
        using var provider = services.BuildServiceProvider();

        // The monitor runs the registered validator: an invalid default would throw OptionsValidationException here.
        var options = provider.GetRequiredService<IOptionsMonitor<ThrivestackOptions>>().Get(ThrivestackRegistration.OptionsName<TestDbContext>());

        var defaults = new ThrivestackOptions();
        Assert.Equal(Token, options.ApiToken);
        Assert.Equal(defaults.Endpoint, options.Endpoint);
        Assert.Equal(defaults.AuthHeader, options.AuthHeader);
        Assert.Equal(defaults.MaxEventsPerBatch, options.MaxEventsPerBatch);
        Assert.Equal(defaults.MaxBatchBytes, options.MaxBatchBytes);
        Assert.Equal(defaults.PollInterval, options.PollInterval);
        Assert.Equal(defaults.MaxConcurrentRequests, options.MaxConcurrentRequests);
        Assert.Equal(defaults.LeaseDuration, options.LeaseDuration);
        Assert.Equal(defaults.RequestTimeout, options.RequestTimeout);
        Assert.Equal(defaults.MaxRequestRetries, options.MaxRequestRetries);
        Assert.Equal(defaults.RetryBaseDelay, options.RetryBaseDelay);
        Assert.Equal(defaults.RetryMaxDelay, options.RetryMaxDelay);
        Assert.Equal(defaults.MaxAttempts, options.MaxAttempts);
        Assert.Equal(defaults.DeliveredRetention, options.DeliveredRetention);
        Assert.Equal(defaults.SendingEnabled, options.SendingEnabled);
    }
}
