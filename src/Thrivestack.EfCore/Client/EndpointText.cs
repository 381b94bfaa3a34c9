namespace Thrivestack.EfCore.Client;

/// <summary>The endpoint as logs and messages show it: without user info, query or fragment, where a secret could sit.</summary>
internal static class EndpointText
{
    /// <summary>Scheme, host, port and path of an absolute endpoint; a relative one up to its query or fragment.</summary>
    public static string Of(Uri endpoint) =>
        endpoint.IsAbsoluteUri
            ? endpoint.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped)
            : endpoint.OriginalString.Split('?', '#')[0];
}
