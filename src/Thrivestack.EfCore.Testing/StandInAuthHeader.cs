namespace Thrivestack.EfCore.Testing;

/// <summary>The request header in which the stand-in expects the API token.</summary>
public enum StandInAuthHeader
{
    /// <summary><c>Authorization: Bearer &lt;token&gt;</c>, as ThriveStack's identify API document says.</summary>
    Bearer,

    /// <summary><c>x-api-key: &lt;token&gt;</c>, as ThriveStack's newer pages and scripts use.</summary>
    ApiKey,
}
