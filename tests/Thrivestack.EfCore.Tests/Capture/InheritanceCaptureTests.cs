using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Outbox;
using Thrivestack.EfCore.Tests.Infrastructure;

namespace Thrivestack.EfCore.Tests.Capture;

/// <summary>A mapping on a base type covers its derived types (TPH), matched by the model's type, not GetType().</summary>
public sealed class InheritanceCaptureTests : IAsyncLifetime
{
    private readonly SqliteTestDatabase database = new();

    public async Task InitializeAsync()
    {
        await using var context = NewContext();
        await context.Database.EnsureCreatedAsync();
    }

    public async Task DisposeAsync() => await database.DisposeAsync();

    [Fact]
    public async Task SaveChanges_DerivedTypeWithoutItsOwnMapping_UsesTheBaseMapping()
    {
        var customer = new Customer { Id = Guid.NewGuid(), Email = "c@example.com", Company = "Acme" };
        await using (var context = NewContext())
        {
            context.Add(customer);
            await context.SaveChangesAsync();
            customer.Email = "c2@example.com";
            await context.SaveChangesAsync();
            customer.Company = "unmapped on Customer";
            await context.SaveChangesAsync();
        }

        var rows = await RowsAsync();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(customer.Id.ToString(), r.UserId));
        Assert.Equal("c2@example.com", OutboxReader.Traits(rows[1]).GetProperty("email").GetString());
    }

    [Fact]
    public async Task SaveChanges_DerivedTypeWithItsOwnMapping_SendsItsOwnTraits()
    {
        var partner = new Partner { Id = Guid.NewGuid(), Email = "p@example.com", Firm = "Acme" };
        await using (var context = NewContext())
        {
            context.Add(partner);
            await context.SaveChangesAsync();
            partner.Firm = "Globex";
            await context.SaveChangesAsync();
        }

        var rows = await RowsAsync();
        Assert.Equal(2, rows.Count);
        Assert.Equal("Globex", OutboxReader.Traits(rows[1]).GetProperty(ThrivestackTraits.EmploymentName).GetString());
    }

    private async Task<List<OutboxMessage>> RowsAsync()
    {
        await using var check = NewContext();
        return await check.Set<OutboxMessage>().OrderBy(r => r.Id).ToListAsync();
    }

    private InheritanceContext NewContext()
    {
        var builder = new DbContextOptionsBuilder<InheritanceContext>();
        database.Configure(builder);
        return new InheritanceContext(builder.AddThrivestackIdentifyInterceptor().Options);
    }

    public class Person
    {
        public Guid Id { get; set; }

        public string Email { get; set; } = "";

        public string? Note { get; set; }
    }

    public sealed class Customer : Person
    {
        public string? Company { get; set; }
    }

    public sealed class Partner : Person
    {
        public string? Firm { get; set; }
    }

    private sealed class InheritanceContext(DbContextOptions<InheritanceContext> options) : DbContext(options)
    {
        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<Person>().ToThrivestackUser(p => p.Id).HasTrait(p => p.Email, "email");
            modelBuilder.Entity<Customer>().HasBaseType<Person>();
            modelBuilder.Entity<Partner>().HasBaseType<Person>();
            modelBuilder.Entity<Partner>().ToThrivestackUser(c => c.Id).HasTrait(p => p.Email, "email").HasTrait(c => c.Firm, ThrivestackTraits.EmploymentName);
        }
    }
}
