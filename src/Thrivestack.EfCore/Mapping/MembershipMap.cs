using Microsoft.EntityFrameworkCore.Metadata;

namespace Thrivestack.EfCore.Mapping;

/// <summary>A membership entity type: the member's user id and the group (workspace/account) id.</summary>
internal sealed record MembershipMap(IEntityType EntityType, IdMap UserId, IdMap GroupId);
