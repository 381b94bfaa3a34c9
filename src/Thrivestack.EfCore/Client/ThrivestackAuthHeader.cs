namespace Thrivestack.EfCore;

/// <summary>How the API token is sent to ThriveStack.</summary>
public enum ThrivestackAuthHeader
{
    /// <summary><c>Authorization: Bearer &lt;token&gt;</c>, as ThriveStack's identify API document says.</summary>
    Bearer = 0,

    /// <summary><c>x-api-key: &lt;token&gt;</c>, as ThriveStack's newer pages and scripts use.</summary>
    ApiKey = 1,
}
