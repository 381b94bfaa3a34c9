using Microsoft.EntityFrameworkCore;
using Thrivestack.EfCore.Interception;
using Thrivestack.EfCore.Mapping;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>
/// Which saves count as inserting only new rows (<see cref="ChangeScanner.OnlyInserts"/>): on PostgreSQL only those may
/// carry their events in EF's command without a transaction, because EF finds a failed UPDATE only after the server ran
/// it, and only a new row has no older values a backfill could read.
/// </summary>
public sealed class InsertsOnlyScanTests
{
    [Fact]
    public void OnlyInserts_NewUserWithOwnedTypesInItsTable_IsTrue()
    {
        using var context = new ShapesContext();
        context.Users.Add(new ShapeUser { Id = Guid.NewGuid(), Email = "new@example.com", Home = new Place { City = "Oslo" }, Work = new Place { City = "Bergen" } });

        Assert.True(Scan(context));
    }

    [Fact]
    public void OnlyInserts_OwnedTypeOfItsOwnTableAddedToExistingUser_IsFalse()
    {
        using var context = new ShapesContext();
        var user = new ShapeUser { Id = Guid.NewGuid(), Email = "old@example.com" };
        context.Users.Attach(user);
        user.Billing = new BillingAddress { Line = "1 Main St" };

        Assert.True(context.Entry(user).Reference(u => u.Billing).TargetEntry!.State == EntityState.Added);
        Assert.False(Scan(context));
    }

    [Fact]
    public void OnlyInserts_DependentSharingAnExistingPrincipalsTable_IsFalse()
    {
        using var context = new ShapesContext();
        var account = new Account { Id = 7, Name = "Acme" };
        context.Accounts.Attach(account);
        context.Profiles.Add(new AccountProfile { Id = 7, Email = "acme@example.com" });

        Assert.False(Scan(context));
    }

    [Fact]
    public void OnlyInserts_EntityOfATableWithATrigger_IsFalse()
    {
        using var context = new ShapesContext();
        context.Audited.Add(new AuditedUser { Id = Guid.NewGuid(), Email = "a@example.com" });

        Assert.False(Scan(context));
    }

    [Fact]
    public void OnlyInserts_WithoutFindingInserts_IsFalse()
    {
        using var context = new ShapesContext();
        context.Users.Add(new ShapeUser { Id = Guid.NewGuid(), Email = "new@example.com" });

        var scanner = new ChangeScanner(ModelMap.For(context.Model), findInserts: false);
        scanner.Scan(context.ChangeTracker);
        Assert.False(scanner.OnlyInserts);
    }

    private static bool Scan(DbContext context)
    {
        context.ChangeTracker.DetectChanges();
        var scanner = new ChangeScanner(ModelMap.For(context.Model), findInserts: true);
        scanner.Scan(context.ChangeTracker);
        return scanner.OnlyInserts;
    }

    public sealed class ShapeUser
    {
        public Guid Id { get; set; }

        public string Email { get; set; } = "";

        public Place? Home { get; set; }

        public Place? Work { get; set; }

        public BillingAddress? Billing { get; set; }
    }

    public sealed class Place
    {
        public string? City { get; set; }
    }

    public sealed class BillingAddress
    {
        public string? Line { get; set; }
    }

    public sealed class Account
    {
        public int Id { get; set; }

        public string Name { get; set; } = "";

        public AccountProfile? Profile { get; set; }
    }

    public sealed class AccountProfile
    {
        public int Id { get; set; }

        public string? Email { get; set; }
    }

    public sealed class AuditedUser
    {
        public Guid Id { get; set; }

        public string Email { get; set; } = "";
    }

    private sealed class ShapesContext : DbContext
    {
        public DbSet<ShapeUser> Users => Set<ShapeUser>();

        public DbSet<Account> Accounts => Set<Account>();

        public DbSet<AccountProfile> Profiles => Set<AccountProfile>();

        public DbSet<AuditedUser> Audited => Set<AuditedUser>();

        protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder) => optionsBuilder.UseSqlite("Data Source=:memory:");

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            modelBuilder.AddThrivestackOutbox();
            modelBuilder.Entity<ShapeUser>(user =>
            {
                user.OwnsOne(u => u.Home);
                user.OwnsOne(u => u.Work);
                user.OwnsOne(u => u.Billing, b => b.ToTable("BillingAddresses"));
                user.ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email").HasTrait(u => u.Billing!.Line, "billing");
            });

            // Table splitting without ownership: the profile's row is the account's row.
            modelBuilder.Entity<Account>(account =>
            {
                account.ToTable("Accounts");
                account.HasOne(a => a.Profile).WithOne().HasForeignKey<AccountProfile>(p => p.Id);
            });
            modelBuilder.Entity<AccountProfile>(profile =>
            {
                profile.ToTable("Accounts");
                profile.ToThrivestackUser(p => p.Id).HasTrait(p => p.Email, "email");
            });

            modelBuilder.Entity<AuditedUser>(user =>
            {
                user.ToTable(t => t.HasTrigger("audit_insert"));
                user.ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");
            });
        }
    }
}
