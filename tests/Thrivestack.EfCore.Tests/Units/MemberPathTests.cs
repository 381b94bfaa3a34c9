using System.Linq.Expressions;
using Thrivestack.EfCore.Mapping;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Units;

public sealed class MemberPathTests
{
    [Fact]
    public void From_PropertyOfTheEntity_IsItsName() => Assert.Equal("Email", Path(u => u.Email));

    [Fact]
    public void From_PropertyOfAnOwnedReference_IsTheDottedPath() => Assert.Equal("Address.City", Path(u => u.Address!.City));

    [Fact]
    public void From_BoxedValueProperty_UnwrapsTheConversion() => Assert.Equal("Age", Path(u => u.Age));

    [Fact]
    public void From_CheckedConversion_UnwrapsIt()
    {
        var user = Expression.Parameter(typeof(AppUser), "u");
        var selector = Expression.Lambda(Expression.ConvertChecked(Expression.Property(user, nameof(AppUser.Age)), typeof(long)), user);

        Assert.Equal("Age", MemberPath.From(selector));
    }

    [Fact]
    public void From_TheParameterItself_Throws() => AssertRejected(u => u);

    [Fact]
    public void From_Constant_Throws() => AssertRejected(u => "email");

    [Fact]
    public void From_MethodCall_Throws() => AssertRejected(u => u.Email.Trim());

    [Fact]
    public void From_MemberOfAnotherObject_Throws()
    {
        var other = new AppUser();
        AssertRejected(u => other.Email);
    }

    private static string Path(Expression<Func<AppUser, object?>> selector) => MemberPath.From(selector);

    private static void AssertRejected(Expression<Func<AppUser, object?>> selector)
    {
        var error = Assert.Throws<ArgumentException>(() => MemberPath.From(selector));
        Assert.Equal("selector", error.ParamName);
        Assert.Contains("u => u.Email", error.Message);
    }
}
