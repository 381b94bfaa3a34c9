namespace Thrivestack.EfCore.Mapping;

/// <summary>A membership entity type as configured: the properties that hold the member's user id and the group id.</summary>
internal sealed record MembershipConfiguration(string UserIdProperty, string GroupIdProperty);
