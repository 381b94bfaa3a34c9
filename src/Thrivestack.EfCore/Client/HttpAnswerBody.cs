namespace Thrivestack.EfCore.Client;

/// <summary>How much of an answer's body was read.</summary>
internal enum HttpAnswerBody
{
    /// <summary>The whole body, within the bound.</summary>
    Complete,

    /// <summary>The connection broke off inside the body: what was read is truncated.</summary>
    BrokenOff,

    /// <summary>The body goes on past <see cref="HttpAnswer.MaxBodyBytes"/>; the rest was not read.</summary>
    TooLong,
}
