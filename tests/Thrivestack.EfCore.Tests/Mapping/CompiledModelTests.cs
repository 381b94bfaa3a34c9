using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Scaffolding;
using Thrivestack.EfCore.Tests.Infrastructure;
using IModel = Microsoft.EntityFrameworkCore.Metadata.IModel;

namespace Thrivestack.EfCore.Tests.Mapping;

/// <summary>
/// Compiled models (<c>dotnet ef dbcontext optimize</c>, then <c>UseModel</c>) are not supported: the generated code
/// names the library's internal outbox entity types, and it is generated from the design-time model, which no longer
/// holds the mapping. A context that uses one anyway refuses to save instead of silently capturing nothing.
/// </summary>
public sealed class CompiledModelTests
{
    // The test project's name is a friend of the library's internals, as the integration tests' name is.
    private const string FriendAssembly = "Thrivestack.EfCore.IntegrationTests";

    [Fact]
    public void CompiledModelCode_MappedContext_HasNoMappingAndCompilesOnlyAsAFriendOfTheLibrary()
    {
        using var design = new DesignTimeContext(MapUser);

        var files = design.CompiledModelFiles();

        Assert.DoesNotContain(files, f => f.Code.Contains("Thrivestack:", StringComparison.Ordinal) && !f.Code.Contains("Thrivestack:Outbox", StringComparison.Ordinal));
        var errors = Emit(files, "UserApp", out _);
        Assert.Contains(errors, e => e.Contains("CS0122", StringComparison.Ordinal) && e.Contains("OutboxMessage", StringComparison.Ordinal));
    }

    [Fact]
    public void SaveChanges_CompiledModelOfAMappedContext_FailsNamingTheCompiledModel()
    {
        IModel compiled;
        using (var design = new DesignTimeContext(MapUser))
        {
            compiled = Compile(design.CompiledModelFiles());
        }

        using var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        var options = new DbContextOptionsBuilder<MappedContext>()
            .UseSqlite(connection)
            .UseModel(compiled)
            .AddThrivestackIdentifyInterceptor()
            .Options;
        using var context = new MappedContext(options, DesignTimeContext.Model(MapUser)); // EnsureCreated builds the design-time model
        context.Database.EnsureCreated();
        context.Add(new AppUser { Id = Guid.NewGuid(), Email = "a@example.com" });

        var error = Assert.Throws<InvalidOperationException>(() => context.SaveChanges());

        Assert.Contains("compiled model", error.Message);
        Assert.Contains("UseModel", error.Message);
    }

    private static void MapUser(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<AppUser>().ToThrivestackUser(u => u.Id).HasTrait(u => u.Email, "email");

    private static IModel Compile(IReadOnlyCollection<ScaffoldedFile> files)
    {
        var errors = Emit(files, FriendAssembly, out var image);
        Assert.Empty(errors);
        var modelType = Assembly.Load(image).GetTypes().Single(t => t.Name == nameof(MappedContext) + "Model");
        return (IModel)modelType.GetProperty("Instance", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!;
    }

    private static List<string> Emit(IReadOnlyCollection<ScaffoldedFile> files, string assemblyName, out byte[] image)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Append(typeof(CompiledModelTests).Assembly.Location)
            .Distinct()
            .Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create(
            assemblyName,
            files.Select(f => CSharpSyntaxTree.ParseText(f.Code, path: f.Path)),
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var stream = new MemoryStream();
        var result = compilation.Emit(stream);
        image = stream.ToArray();
        return result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
    }
}
