namespace Thrivestack.EfCore.Sample;

/// <summary>Something the story expected did not happen; the sample prints the message and exits with code 1.</summary>
internal sealed class StoryFailedException : Exception
{
    public StoryFailedException()
    {
    }

    public StoryFailedException(string message)
        : base(message)
    {
    }

    public StoryFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
