using System.Buffers;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Thrivestack.EfCore.Bench.Delivery;

/// <summary>
/// The hand-written baseline: the loop an application would write without the library. Read pending rows in id
/// order (ADO.NET), join their JSON into an array body, POST it with the Bearer token, check the answer, delete
/// the rows; until nothing is left. One connection, one HttpClient, no lease, no retry; kept for the life of the
/// loop, as a long-running application would.
/// </summary>
internal sealed class BaselineDrain(string path, Uri endpoint, string token) : IDisposable
{
    private readonly HttpClient http = new() { DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", token) } };
    private readonly SqliteConnection connection = SqliteBench.Open(path);

    public static Breakdown? Breakdown { get; set; }

    public void Dispose()
    {
        http.Dispose();
        connection.Dispose();
    }

    public async Task<long> RunAsync(int batchSize)
    {
        var json = new MediaTypeHeaderValue("application/json");
        await using var read = connection.CreateCommand();
        read.CommandText = $"SELECT \"id\", \"payload\" FROM {SqliteBench.Outbox} WHERE \"state\" = 0 ORDER BY \"id\" LIMIT $limit";
        read.Parameters.AddWithValue("$limit", batchSize);
        await using var delete = connection.CreateCommand();
        delete.CommandText = $"DELETE FROM {SqliteBench.Outbox} WHERE \"id\" BETWEEN $first AND $last AND \"state\" = 0";
        var first = delete.Parameters.Add("$first", SqliteType.Integer);
        var last = delete.Parameters.Add("$last", SqliteType.Integer);
        var body = new ArrayBufferWriter<byte>(256 * 1024);
        long sent = 0;
        while (true)
        {
            body.ResetWrittenCount();
            long firstId = 0, lastId = 0;
            var count = 0;
            var mark = Stopwatch.GetTimestamp();
            await using (var reader = await read.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    lastId = reader.GetInt64(0);
                    if (count++ == 0)
                    {
                        firstId = lastId;
                        body.Write("["u8);
                    }
                    else
                    {
                        body.Write(","u8);
                    }

                    var payload = reader.GetString(1);
                    var span = body.GetSpan(Encoding.UTF8.GetMaxByteCount(payload.Length));
                    body.Advance(Encoding.UTF8.GetBytes(payload, span));
                }
            }

            mark = Lap("SQL read (SELECT)", mark);
            if (count == 0)
            {
                return sent;
            }

            body.Write("]"u8);
            using var content = new ReadOnlyMemoryContent(body.WrittenMemory);
            content.Headers.ContentType = json;
            using var response = await http.PostAsync(endpoint, content);
            await using var answer = await response.Content.ReadAsStreamAsync();
            using var document = await JsonDocument.ParseAsync(answer);
            if (!response.IsSuccessStatusCode || !document.RootElement.GetProperty("success").GetBoolean())
            {
                throw new InvalidOperationException($"The stand-in refused a batch: {(int)response.StatusCode} {document.RootElement}");
            }

            mark = Lap("HTTP request (send + answer)", mark);
            first.Value = firstId;
            last.Value = lastId;
            await delete.ExecuteNonQueryAsync();
            Lap("SQL acknowledge (DELETE)", mark);
            sent += count;
        }
    }

    private static long Lap(string kind, long since)
    {
        var now = Stopwatch.GetTimestamp();
        Breakdown?.Add(kind, now - since);
        return now;
    }
}
