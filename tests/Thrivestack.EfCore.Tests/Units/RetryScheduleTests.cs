using Thrivestack.EfCore.Dispatch;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>
/// Exponential backoff with jitter. RetrySchedule draws from Random.Shared (no seam to inject one), so bounds are
/// checked over many draws rather than on chosen values.
/// </summary>
public sealed class RetryScheduleTests
{
    private const int Draws = 500;
    private static readonly TimeSpan Base = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Max = TimeSpan.FromMinutes(5);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(6, 32)]
    public void Delay_Attempt_LiesInTheUpperHalfOfBaseTimesTwoToTheAttemptMinusOne(int attempt, int ceilingSeconds)
    {
        var ceiling = TimeSpan.FromSeconds(ceilingSeconds);
        for (var i = 0; i < Draws; i++)
        {
            var delay = RetrySchedule.Delay(attempt, Base, Max);
            Assert.InRange(delay, ceiling / 2, ceiling);
        }
    }

    [Theory]
    [InlineData(10)]
    [InlineData(30)]
    [InlineData(1_000)]
    [InlineData(int.MaxValue)]
    public void Delay_ManyAttempts_IsCappedAtTheMaximum(int attempt)
    {
        for (var i = 0; i < Draws; i++)
        {
            Assert.InRange(RetrySchedule.Delay(attempt, Base, Max), Max / 2, Max);
        }
    }

    [Fact]
    public void Delay_ZeroOrNegativeAttempt_IsTreatedAsTheFirst()
    {
        Assert.InRange(RetrySchedule.Delay(0, Base, Max), Base / 2, Base);
        Assert.InRange(RetrySchedule.Delay(-5, Base, Max), Base / 2, Base);
    }

    [Fact]
    public void Delay_RepeatedDraws_AreJittered()
    {
        var delays = Enumerable.Range(0, Draws).Select(_ => RetrySchedule.Delay(4, Base, Max)).ToHashSet();

        Assert.True(delays.Count > Draws / 2, $"only {delays.Count} distinct delays in {Draws} draws");
    }

    [Fact]
    public void Delay_RetryAfterLongerThanTheBackoff_WinsUpToRetryMaxDelay()
    {
        // A server's wait wins over a shorter backoff, but never over RetryMaxDelay (a Retry-After of years would
        // otherwise hold rows, or the dispatcher, for as long).
        Assert.Equal(TimeSpan.FromSeconds(3), RetrySchedule.Delay(1, Base, Max, TimeSpan.FromSeconds(3)));
        Assert.Equal(Max, RetrySchedule.Delay(1, Base, Max, Max + TimeSpan.FromMinutes(5)));
        Assert.Equal(Max, RetrySchedule.Delay(1, Base, Max, TimeSpan.FromDays(3650)));
    }

    [Fact]
    public void Delay_RetryAfterShorterThanTheBackoff_KeepsTheBackoff()
    {
        for (var i = 0; i < Draws; i++)
        {
            Assert.InRange(RetrySchedule.Delay(3, Base, Max, TimeSpan.FromMilliseconds(1)), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4));
        }
    }
}
