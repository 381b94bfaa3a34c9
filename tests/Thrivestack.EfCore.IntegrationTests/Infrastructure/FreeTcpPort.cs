using System.Net;
using System.Net.Sockets;

namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal static class FreeTcpPort
{
    public static int Find()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}
