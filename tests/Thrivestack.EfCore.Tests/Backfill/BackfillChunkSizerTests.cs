using Thrivestack.EfCore.Backfill;

namespace Thrivestack.EfCore.Tests.Backfill;

/// <summary>The chunk size that follows the lock time of the last chunk, within its bounds.</summary>
public sealed class BackfillChunkSizerTests
{
    private static readonly TimeSpan Target = TimeSpan.FromMilliseconds(5);

    [Fact]
    public void Constructor_DefaultChunkSize_StartsSmall()
    {
        var sizer = new BackfillChunkSizer(500, Target);

        Assert.Equal(BackfillChunkSizer.InitialSize, sizer.Current);
        Assert.Equal(BackfillChunkSizer.MinimumSize, sizer.Minimum);
    }

    [Fact]
    public void Record_ChunkHeldTheLockFarTooLong_ShrinksToTheMinimumAndNoFurther()
    {
        var sizer = new BackfillChunkSizer(1000, Target);
        sizer.Record(100, TimeSpan.Zero);
        sizer.Record(200, TimeSpan.Zero);

        sizer.Record(400, TimeSpan.FromSeconds(1));
        var shrunk = sizer.Current;
        sizer.Record(100, TimeSpan.FromSeconds(1));

        Assert.Equal(BackfillChunkSizer.MinimumSize, shrunk);
        Assert.Equal(BackfillChunkSizer.MinimumSize, sizer.Current);
    }

    [Fact]
    public void Record_ChunkTwiceTheTarget_HalvesTheSize()
    {
        var sizer = new BackfillChunkSizer(1000, Target);
        sizer.Record(100, TimeSpan.Zero);
        sizer.Record(200, TimeSpan.Zero);

        sizer.Record(400, 2 * Target);

        Assert.Equal(200, sizer.Current);
    }

    [Fact]
    public void Record_QuickChunks_GrowAtMostTwiceEachUpToChunkSize()
    {
        var sizer = new BackfillChunkSizer(700, Target);
        var sizes = new List<int>();

        for (var i = 0; i < 4; i++)
        {
            sizer.Record(sizer.Current, TimeSpan.FromTicks(1));
            sizes.Add(sizer.Current);
        }

        Assert.Equal([200, 400, 700, 700], sizes);
    }

    [Fact]
    public void Record_ChunkAtTheTarget_KeepsTheSize()
    {
        var sizer = new BackfillChunkSizer(1000, Target);
        sizer.Record(100, TimeSpan.Zero);

        sizer.Record(200, Target);

        Assert.Equal(200, sizer.Current);
    }

    [Fact]
    public void Record_ChunkSizeBelowTheMinimum_NeverLeavesChunkSize()
    {
        var sizer = new BackfillChunkSizer(3, Target);
        var first = sizer.Current;

        sizer.Record(3, TimeSpan.FromSeconds(1));
        var slow = sizer.Current;
        sizer.Record(3, TimeSpan.Zero);

        Assert.Equal(3, first);
        Assert.Equal(3, slow);
        Assert.Equal(3, sizer.Current);
    }

    [Fact]
    public void Record_EmptyChunk_KeepsTheSize()
    {
        var sizer = new BackfillChunkSizer(500, Target);

        sizer.Record(0, TimeSpan.FromSeconds(1));

        Assert.Equal(BackfillChunkSizer.InitialSize, sizer.Current);
    }
}
