namespace Thrivestack.EfCore;

/// <summary>
/// The trait keys that ThriveStack's identify API documents. Keys that are not listed here
/// (such as <c>email</c>) are allowed too.
/// </summary>
public static class ThrivestackTraits
{
    /// <summary>The user's first name (string).</summary>
    public const string FirstName = "enrichment_first_name";

    /// <summary>The user's last name (string).</summary>
    public const string LastName = "enrichment_last_name";

    /// <summary>The user's full name (string).</summary>
    public const string FullName = "enrichment_full_name";

    /// <summary>The URL or path of the user's avatar (string).</summary>
    public const string Avatar = "enrichment_avatar";

    /// <summary>The provider of the user's email service (string).</summary>
    public const string EmailProvider = "enrichment_email_provider";

    /// <summary>The user's phone numbers (array of strings).</summary>
    public const string Phone = "enrichment_phone";

    /// <summary>The user's city (string).</summary>
    public const string City = "enrichment_city";

    /// <summary>The user's state or province (string).</summary>
    public const string State = "enrichment_state";

    /// <summary>The abbreviated code of the user's state (string).</summary>
    public const string StateCode = "enrichment_state_code";

    /// <summary>The user's time zone (string).</summary>
    public const string TimeZone = "enrichment_time_zone";

    /// <summary>A general description of where the user is based (string).</summary>
    public const string Location = "enrichment_location";

    /// <summary>The user's country (string).</summary>
    public const string Country = "enrichment_country";

    /// <summary>The ISO code of the user's country (string).</summary>
    public const string CountryCode = "enrichment_country_code";

    /// <summary>The web domain of the user's employer (string).</summary>
    public const string EmploymentDomain = "enrichment_employment_domain";

    /// <summary>The name of the user's employer (string).</summary>
    public const string EmploymentName = "enrichment_employment_name";

    /// <summary>The user's role in their company (string).</summary>
    public const string EmploymentRole = "enrichment_employment_role";

    /// <summary>The seniority of the user's role (string).</summary>
    public const string EmploymentSeniority = "enrichment_employment_seniority";

    /// <summary>A more specific role of the user (string).</summary>
    public const string EmploymentSubRole = "enrichment_employment_sub_role";

    /// <summary>The user's official job title (string).</summary>
    public const string EmploymentTitle = "enrichment_employment_title";

    /// <summary>The user's Facebook handle (string).</summary>
    public const string FacebookHandle = "enrichment_facebook_handle";

    /// <summary>The user's GitHub handle (string).</summary>
    public const string GitHubHandle = "enrichment_github_handle";

    /// <summary>The user's LinkedIn handle (string).</summary>
    public const string LinkedInHandle = "enrichment_linkedin_handle";

    /// <summary>The user's Twitter handle (string).</summary>
    public const string TwitterHandle = "enrichment_twitter_handle";

    /// <summary>When the user became inactive (string; dates are sent as ISO 8601).</summary>
    public const string InactiveAt = "enrichment_inactive_at";

    /// <summary>When the user became active (string; dates are sent as ISO 8601).</summary>
    public const string ActiveAt = "enrichment_active_at";
}
