using System.Reflection;
using System.Xml.Linq;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Thrivestack.EfCore.Testing;

namespace Thrivestack.EfCore.Tests.Units;

/// <summary>
/// Public members that throw say so with <c>&lt;exception&gt;</c> in their XML docs, read from the documentation files the
/// build writes (GenerateDocumentationFile) and copies next to the assemblies.
/// </summary>
public sealed class PublicApiExceptionDocsTests
{
    private static readonly Assembly[] Assemblies = [typeof(ThrivestackOptions).Assembly, typeof(ThrivestackStandIn).Assembly];

    /// <summary>Methods of public static classes that need no <c>&lt;exception&gt;</c>, with the reason. None: each checks its arguments.</summary>
    private static readonly Dictionary<string, string> StaticMethodAllowList = new(StringComparer.Ordinal);

    /// <summary>Types (<c>T:</c>) and members of other public types that throw nothing of their own, with the reason.</summary>
    private static readonly Dictionary<string, string> MemberAllowList = new(StringComparer.Ordinal)
    {
        ["T:Thrivestack.EfCore.ThrivestackOptions"] = "plain options: checked when the host starts, documented on AddThrivestackIdentify",
        ["T:Thrivestack.EfCore.ThrivestackBackfillOptions"] = "plain options: checked by BackfillThrivestackAsync, documented there",
        ["T:Thrivestack.EfCore.ThrivestackBackfillProgress"] = "data with init properties: nothing to check",
        ["T:Thrivestack.EfCore.ThrivestackBackfillResult"] = "data with init properties: nothing to check",
        ["T:Thrivestack.EfCore.ThrivestackDeadLetter"] = "data with init properties: nothing to check",
        ["T:Thrivestack.EfCore.ThrivestackOutboxState"] = "data with init properties: nothing to check",
        ["M:Thrivestack.EfCore.ThrivestackInterceptorOptionsBuilder.DispatchedElsewhere"] = "no arguments: only records a flag",
        ["T:Thrivestack.EfCore.Testing.ThrivestackStandInOptions"] = "plain options: checked by ThrivestackStandIn.StartAsync, documented there",
        ["T:Thrivestack.EfCore.Testing.ReceivedIdentifyEvent"] = "data with init properties: nothing to check",
        ["T:Thrivestack.EfCore.Testing.ReceivedRequest"] = "data with init properties: nothing to check",
        ["P:Thrivestack.EfCore.Testing.StandInFaults.Unauthorized"] = "a boolean: every value is valid",
        ["P:Thrivestack.EfCore.Testing.StandInFaults.SuccessFalse"] = "a boolean: every value is valid",
        ["P:Thrivestack.EfCore.Testing.StandInFaults.EventIdResponse"] = "a boolean: every value is valid",
        ["M:Thrivestack.EfCore.Testing.ThrivestackStandIn.Reset"] = "no arguments: clears recordings and restores defaults",
        ["M:Thrivestack.EfCore.Testing.ThrivestackStandIn.DisposeAsync"] = "disposal: stops the server, idempotent",
    };

    [Fact]
    public void PublicStaticClasses_EveryPublicMethod_DocumentsAnException()
    {
        var missing = StaticClassMethods()
            .Where(m => !StaticMethodAllowList.ContainsKey(DocId(m)))
            .Where(m => !HasExceptionDoc(m))
            .Select(DocId)
            .ToList();

        Assert.True(missing.Count == 0, "Public methods of public static classes without <exception> docs:\n" + string.Join('\n', missing));
    }

    [Fact]
    public void PublicTypes_EveryMethodConstructorAndSetter_DocumentsAnExceptionOrIsAllowListed()
    {
        var missing = InstanceSurface()
            .Where(m => !MemberAllowList.ContainsKey("T:" + TypeName(m.DeclaringType!)) && !MemberAllowList.ContainsKey(DocId(m)))
            .Where(m => !HasExceptionDoc(m))
            .Select(DocId)
            .ToList();

        Assert.True(
            missing.Count == 0,
            "Public members without <exception> docs; document what they throw, or allow-list them with the reason they throw nothing:\n"
                + string.Join('\n', missing));
    }

    [Fact]
    public void AllowLists_EveryEntry_NamesAPublicMember()
    {
        var known = StaticClassMethods().Concat(InstanceSurface())
            .SelectMany(m => new[] { DocId(m), "T:" + TypeName(m.DeclaringType!) })
            .ToHashSet(StringComparer.Ordinal);

        var stale = StaticMethodAllowList.Keys.Concat(MemberAllowList.Keys).Where(k => !known.Contains(k)).ToList();

        Assert.True(stale.Count == 0, "Allow-list entries that name no public member:\n" + string.Join('\n', stale));
    }

    [Fact]
    public async Task DeadLetterMethods_ModelWithoutOutbox_ThrowInvalidOperation()
    {
        await using var context = new PlainContext();

        await Assert.ThrowsAsync<InvalidOperationException>(() => context.GetThrivestackOutboxStateAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(() => context.GetThrivestackDeadLettersAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(() => context.RequeueThrivestackDeadLettersAsync([1]));
        await Assert.ThrowsAsync<InvalidOperationException>(() => context.RequeueAllThrivestackDeadLettersAsync());
        await Assert.ThrowsAsync<InvalidOperationException>(() => context.PurgeThrivestackDeadLettersAsync([1]));
        await Assert.ThrowsAsync<InvalidOperationException>(() => context.PurgeAllThrivestackDeadLettersAsync());
    }

    [Fact]
    public async Task AddThrivestackIdentify_UnconvertibleConfigurationValue_HostStartThrowsInvalidOperation()
    {
        var section = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Thrivestack:ApiToken"] = "token", ["Thrivestack:MaxEventsPerBatch"] = "many" })
            .Build()
            .GetSection("Thrivestack");
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddDbContext<PlainContext>();
        builder.Services.AddThrivestackIdentify<PlainContext>(section);
        using var host = builder.Build();

        var exception = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());

        Assert.Contains("MaxEventsPerBatch", exception.Message, StringComparison.Ordinal);
    }

    private static IEnumerable<MethodInfo> StaticClassMethods() =>
        Assemblies.SelectMany(a => a.GetExportedTypes())
            .Where(t => t is { IsAbstract: true, IsSealed: true, IsClass: true })
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => !m.IsSpecialName);

    /// <summary>Public methods, constructors and property setters of the public types that are not static classes.</summary>
    private static IEnumerable<MemberInfo> InstanceSurface()
    {
        const BindingFlags declared = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var type in Assemblies.SelectMany(a => a.GetExportedTypes()).Where(t => t.IsClass && !(t.IsAbstract && t.IsSealed)))
        {
            foreach (var member in type.GetConstructors(BindingFlags.Public | BindingFlags.Instance))
            {
                yield return member;
            }

            foreach (var member in type.GetMethods(declared).Where(m => !m.IsSpecialName))
            {
                yield return member;
            }

            foreach (var member in type.GetProperties(declared).Where(p => p.SetMethod is { IsPublic: true }))
            {
                yield return member;
            }
        }
    }

    private static bool HasExceptionDoc(MemberInfo member)
    {
        var documentation = Documentation(member.Module.Assembly);
        Assert.True(documentation.TryGetValue(DocId(member), out var element), $"{DocId(member)} has no XML documentation entry.");
        return element.Elements("exception").Any();
    }

    private static readonly Dictionary<Assembly, Dictionary<string, XElement>> DocumentationCache = [];

    private static Dictionary<string, XElement> Documentation(Assembly assembly)
    {
        lock (DocumentationCache)
        {
            if (!DocumentationCache.TryGetValue(assembly, out var members))
            {
                var path = Path.ChangeExtension(assembly.Location, ".xml");
                Assert.True(File.Exists(path), $"{path} is missing: the src projects set GenerateDocumentationFile, and the build copies the file next to the assembly.");
                members = XDocument.Load(path).Descendants("member").ToDictionary(e => (string)e.Attribute("name")!, StringComparer.Ordinal);
                DocumentationCache[assembly] = members;
            }

            return members;
        }
    }

    /// <summary>The member's documentation id, as the C# compiler writes it into the XML file.</summary>
    private static string DocId(MemberInfo member) => member switch
    {
        PropertyInfo property => $"P:{TypeName(property.DeclaringType!)}.{property.Name}",
        ConstructorInfo constructor => $"M:{TypeName(constructor.DeclaringType!)}.#ctor{Parameters(constructor)}",
        MethodInfo method => $"M:{TypeName(method.DeclaringType!)}.{method.Name}"
            + (method.IsGenericMethodDefinition ? "``" + method.GetGenericArguments().Length : "") + Parameters(method),
        _ => throw new ArgumentException($"No documentation id for a {member.MemberType}.", nameof(member)),
    };

    private static string TypeName(Type type) => type.FullName!.Replace('+', '.');

    private static string Parameters(MethodBase method)
    {
        var parameters = method.GetParameters();
        return parameters.Length == 0 ? "" : "(" + string.Join(',', parameters.Select(p => ParameterType(p.ParameterType))) + ")";
    }

    private static string ParameterType(Type type)
    {
        if (type.IsGenericParameter)
        {
            return (type.DeclaringMethod is null ? "`" : "``") + type.GenericParameterPosition;
        }

        if (type.IsByRef)
        {
            return ParameterType(type.GetElementType()!) + "@";
        }

        if (type.IsArray)
        {
            return ParameterType(type.GetElementType()!) + "[]";
        }

        if (type.IsGenericType)
        {
            var definition = TypeName(type.GetGenericTypeDefinition());
            return definition[..definition.IndexOf('`', StringComparison.Ordinal)] + "{" + string.Join(',', type.GetGenericArguments().Select(ParameterType)) + "}";
        }

        return TypeName(type);
    }

    private sealed class PlainContext : DbContext
    {
        public PlainContext()
        {
        }

        public PlainContext(DbContextOptions<PlainContext> options)
            : base(options)
        {
        }

        protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder)
        {
            if (!optionsBuilder.IsConfigured)
            {
                optionsBuilder.UseSqlite("Data Source=:memory:");
            }
        }

        protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<PlainRow>();
    }

    private sealed class PlainRow
    {
        public int Id { get; set; }
    }
}
