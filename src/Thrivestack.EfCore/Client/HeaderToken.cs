namespace Thrivestack.EfCore.Client;

/// <summary>Whether a token can travel as an HTTP header value: printable ASCII only, so no CR/LF can split the header.</summary>
internal static class HeaderToken
{
    public const string ProviderMessage = "TokenProvider returned a token that is not a valid header value (control or non-ASCII characters)";

    public static bool IsValid(string token)
    {
        foreach (var c in token)
        {
            if (c is < ' ' or > '~')
            {
                return false;
            }
        }

        return true;
    }
}
