using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Thrivestack.EfCore.Testing.Server;

/// <summary>The token the stand-in accepts now, and the constant-time check of a request's header against it.</summary>
internal sealed class StandInCredentials
{
    private const string BearerPrefix = "Bearer ";

    private readonly StandInAuthHeader header;
    private volatile string token;

    public StandInCredentials(StandInAuthHeader header, string token)
    {
        this.header = header;
        this.token = token;
    }

    public string Token
    {
        get => token;
        set
        {
            ArgumentException.ThrowIfNullOrEmpty(value, nameof(ThrivestackStandIn.ApiToken));
            token = value;
        }
    }

    public bool Accepts(IHeaderDictionary headers)
    {
        var values = header == StandInAuthHeader.Bearer ? headers.Authorization : headers["x-api-key"];
        if (values.Count != 1 || values[0] is not string value)
        {
            return false;
        }

        ReadOnlySpan<char> given = value;
        if (header == StandInAuthHeader.Bearer)
        {
            if (!given.StartsWith(BearerPrefix, StringComparison.Ordinal))
            {
                return false;
            }

            given = given[BearerPrefix.Length..];
        }

        return CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(given), MemoryMarshal.AsBytes(token.AsSpan()));
    }
}
