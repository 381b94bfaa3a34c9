using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Thrivestack.EfCore.Testing.Server;

/// <summary>The token the stand-in accepts now, and the constant-time check of a request's header against it.</summary>
internal sealed class StandInCredentials
{
    private const string BearerPrefix = "Bearer ";

    private readonly StandInAuthHeader _header;
    private volatile string _token;

    public StandInCredentials(StandInAuthHeader header, string token)
    {
        _header = header;
        _token = token;
    }

    public string Token
    {
        get => _token;
        set
        {
            ArgumentException.ThrowIfNullOrEmpty(value, nameof(ThrivestackStandIn.ApiToken));
            _token = value;
        }
    }

    public bool Accepts(IHeaderDictionary headers)
    {
        StringValues values = _header == StandInAuthHeader.Bearer ? headers.Authorization : headers["x-api-key"];
        if (values.Count != 1 || values[0] is not string value)
        {
            return false;
        }

        ReadOnlySpan<char> given = value;
        if (_header == StandInAuthHeader.Bearer)
        {
            if (!given.StartsWith(BearerPrefix, StringComparison.Ordinal))
            {
                return false;
            }

            given = given[BearerPrefix.Length..];
        }

        return CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(given), MemoryMarshal.AsBytes(_token.AsSpan()));
    }
}
