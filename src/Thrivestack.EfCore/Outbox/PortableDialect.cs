namespace Thrivestack.EfCore.Outbox;

/// <summary>Any other relational provider: the portable forms of <see cref="OutboxDialect"/>, and a parameter limit below SQL Server's 2,100.</summary>
internal sealed class PortableDialect : OutboxDialect
{
    public static readonly PortableDialect Instance = new();

    private PortableDialect()
    {
    }

    public override int MaxParameters => 2_000;
}
