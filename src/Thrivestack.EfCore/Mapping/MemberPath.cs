using System.Linq.Expressions;

namespace Thrivestack.EfCore.Mapping;

/// <summary>Turns <c>u =&gt; u.Address.City</c> into <c>"Address.City"</c>.</summary>
internal static class MemberPath
{
    public static string From(LambdaExpression selector)
    {
        var names = new Stack<string>();
        var body = selector.Body;
        while (body is UnaryExpression { NodeType: ExpressionType.Convert or ExpressionType.ConvertChecked } convert)
        {
            body = convert.Operand;
        }

        while (body is MemberExpression member)
        {
            names.Push(member.Member.Name);
            body = member.Expression!;
        }

        if (body != selector.Parameters[0] || names.Count == 0)
        {
            throw new ArgumentException(
                $"'{selector}' is not a property access. Pass a selector such as u => u.Email, or u => u.Address.City for a property of an owned type.",
                nameof(selector));
        }

        return string.Join('.', names);
    }
}
