namespace Thrivestack.EfCore.Bench;

/// <summary>New users as every bench saves them: every trait set, and the columns that are not traits too.</summary>
public static class BenchUsers
{
    /// <summary>One user whose email is unique across runs (the scenarios that save into an existing database).</summary>
    public static BenchUser New(int i) => New($"user{i}-{Guid.NewGuid():N}@example.com", DateTime.UtcNow);

    /// <summary><paramref name="count"/> users with the emails <c>user{seed}-{i}@example.com</c>.</summary>
    public static List<BenchUser> New(int count, int seed)
    {
        var users = new List<BenchUser>(count);
        var now = DateTime.UtcNow;
        for (var i = 0; i < count; i++)
        {
            users.Add(New($"user{seed}-{i}@example.com", now));
        }

        return users;
    }

    private static BenchUser New(string email, DateTime activeAt) => new()
    {
        Id = Guid.NewGuid(),
        Email = email,
        FirstName = "Ada",
        LastName = "Lovelace",
        Phones = ["+44 20 7946 0000"],
        Age = 36,
        ActiveAt = activeAt,
        Notes = "created by the benchmark",
        Address = new BenchAddress { City = "London", Street = "1 Analytical Way" },
    };
}
