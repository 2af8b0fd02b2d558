using System.Diagnostics;
using System.IO.Compression;
using System.Text.RegularExpressions;
using Xunit;
using Xunit.Abstractions;

namespace GpuNet.Package.Tests;

/// <summary>
/// Packs a copy of the repository (its sources, not this checkout's build outputs) into a local feed once for the class:
/// the four libraries and the CLI tool, as <c>dotnet pack GpuNet.sln -c Release -o feed</c> would.
/// </summary>
public sealed class LocalFeed : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("gpunet-package-").FullName;

    public string Feed => Path.Combine(Root, "feed");

    public string Repository { get; }

    /// <summary>
    /// A version of this run's own (0.3.0-test.TIMESTAMP): NuGet caches packages by id and version, so a fixed version could
    /// restore a copy packed from older sources.
    /// </summary>
    public string Version { get; } = $"0.3.0-test.{DateTime.UtcNow:yyyyMMddHHmmssfff}";

    public LocalFeed()
    {
        Repository = FindRepository();
        string copy = Path.Combine(Root, "repo");
        foreach (var item in new[] { "src", "bench", "samples", "tests/GpuNet.Layers.Tests/Fixtures", "tests/GpuNet.Onnx.Tests/Models", "Directory.Build.props", "Directory.Packages.props", "README.md" })
            Copy(Path.Combine(Repository, item), Path.Combine(copy, item));
        foreach (var project in new[] { "src/Runtime", "src/Kernels", "src/Ops", "src/Layers", "src/Onnx", "bench" })
            Dotnet.Run(copy, "pack", project, "-c", "Release", "-o", Feed, "-p:Version=" + Version);
    }

    /// <summary>The directory holding GpuNet.sln above the test's output directory.</summary>
    private static string FindRepository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "GpuNet.sln")))
                return dir.FullName;
        throw new InvalidOperationException("GpuNet.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Copies a file or a directory tree, leaving out build outputs (bin/, obj/).</summary>
    private static void Copy(string from, string to)
    {
        if (File.Exists(from))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(from, to, true);
            return;
        }
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (relative.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
                continue;
            var target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, true);
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Runs the dotnet CLI and returns its output; a non-zero exit fails with the output.</summary>
internal static class Dotnet
{
    public static string Run(string workingDirectory, params string[] args) => Process(workingDirectory, "dotnet", args);

    public static string Process(string workingDirectory, string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["GPUNET_DEVICE"] = "cpu";
        using var p = System.Diagnostics.Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string output = stdout + stderr.Result;
        if (p.ExitCode != 0)
            throw new Xunit.Sdk.XunitException($"{file} {string.Join(" ", args)} exited {p.ExitCode} in {workingDirectory}:\n{output}");
        return output;
    }
}

/// <summary>
/// The packages as a user gets them: a console app that references GpuNet from a local feed builds and runs the README's
/// examples (taken from README.md itself), each package carries the README, XML docs and symbols, and the CLI installs as
/// a dotnet tool that answers --help and runs a verb.
/// </summary>
public sealed class PackageTests(LocalFeed feed, ITestOutputHelper output) : IClassFixture<LocalFeed>
{
    private static readonly string[] Libraries = { "GpuNet.Runtime", "GpuNet.Kernels", "GpuNet.Ops", "GpuNet.Layers", "GpuNet.Onnx" };

    [Fact]
    public void EveryPackageCarriesTheReadmeXmlDocsAndSymbols()
    {
        foreach (var id in Libraries)
        {
            using var zip = ZipFile.OpenRead(Path.Combine(feed.Feed, $"{id}.{feed.Version}.nupkg"));
            var names = zip.Entries.Select(e => e.FullName).ToHashSet();
            Assert.Contains("README.md", names);
            Assert.Contains($"lib/net10.0/{id}.dll", names);
            Assert.Contains($"lib/net10.0/{id}.xml", names);
            Assert.True(File.Exists(Path.Combine(feed.Feed, $"{id}.{feed.Version}.snupkg")), $"{id}: no symbols package");
            // The correctness machinery (references, case registry, kernel catalog, PTX compiler) lives in GpuNet.Checks,
            // which the tests and the CLI use and no library package ships or depends on.
            var types = TypeNames(zip, $"lib/net10.0/{id}.dll");
            Assert.DoesNotContain(types, t => t.Namespace.EndsWith(".Checks") || t.Namespace.EndsWith(".Reference"));
            Assert.DoesNotContain(types, t => t.Name is "GoldenModels" or "GoldenCase" or "CheckRunner" or "KernelRegistry" or "PtxCompiler");
            using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
            Assert.DoesNotContain("GpuNet.Checks", nuspec.ReadToEnd());
        }
        Assert.False(File.Exists(Path.Combine(feed.Feed, $"GpuNet.Checks.{feed.Version}.nupkg")), "GpuNet.Checks must not be packed");
        using var tool = ZipFile.OpenRead(Path.Combine(feed.Feed, $"GpuNet.Cli.{feed.Version}.nupkg"));
        Assert.Contains(tool.Entries, e => e.FullName == "tools/net10.0/any/gpunet.dll");
        Assert.DoesNotContain(tool.Entries, e => e.FullName.EndsWith(".pdb") && e.FullName.Contains("/runtimes/"));
    }

    /// <summary>The types an assembly inside a package defines (read from its metadata, not loaded).</summary>
    private static List<(string Namespace, string Name)> TypeNames(ZipArchive zip, string entry)
    {
        using var stream = zip.GetEntry(entry)!.Open();
        var bytes = new MemoryStream();
        stream.CopyTo(bytes);
        bytes.Position = 0;
        using var pe = new System.Reflection.PortableExecutable.PEReader(bytes);
        var metadata = System.Reflection.Metadata.PEReaderExtensions.GetMetadataReader(pe);
        return metadata.TypeDefinitions.Select(h => metadata.GetTypeDefinition(h))
            .Select(t => (metadata.GetString(t.Namespace), metadata.GetString(t.Name))).ToList();
    }

    /// <summary>The <paramref name="index"/>-th C# block of README.md's section <paramref name="heading"/>.</summary>
    private string ReadmeExample(string heading, int index = 0)
    {
        var readme = File.ReadAllText(Path.Combine(feed.Repository, "README.md"));
        int start = readme.IndexOf("## " + heading + "\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"README has no section '{heading}'");
        int end = readme.IndexOf("\n## ", start + 3, StringComparison.Ordinal);
        var section = end < 0 ? readme[start..] : readme[start..end];
        var blocks = Regex.Matches(section, "```csharp\n(.*?)```", RegexOptions.Singleline);
        Assert.True(blocks.Count > index, $"README section '{heading}' has no C# block {index}");
        return blocks[index].Groups[1].Value;
    }

    private string BuildAndRun(string name, string program, string? sample = null)
    {
        string app = Path.Combine(feed.Root, name);
        Directory.CreateDirectory(app);
        bool data = false;
        if (sample is not null)
        {
            // The sample's sources and data as they are in samples/NAME; its csproj (which references the sources) is replaced
            // by one that references the packages.
            foreach (var file in Directory.EnumerateFiles(sample, "*", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(sample, file);
                if (relative.EndsWith(".csproj") || relative.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj"))
                    continue;
                data |= relative.StartsWith("model" + Path.DirectorySeparatorChar);
                Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(app, relative))!);
                File.Copy(file, Path.Combine(app, relative), true);
            }
        }
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="local" value="{feed.Feed}" />
              </packageSources>
            </configuration>
            """);
        // Packages restore into the app's own folder (the machine's cache serves only as a fallback for GpuNet's dependencies).
        File.WriteAllText(Path.Combine(app, name + ".csproj"), $$"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <RestorePackagesPath>{{Path.Combine(app, "packages")}}</RestorePackagesPath>
                <RestoreAdditionalProjectFallbackFolders>$(NuGetPackageRoot)</RestoreAdditionalProjectFallbackFolders>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="GpuNet.Layers" Version="{{feed.Version}}" />
                <PackageReference Include="GpuNet.Onnx" Version="{{feed.Version}}" />
                {{(data ? "<None Include=\"model/**\" CopyToOutputDirectory=\"PreserveNewest\" />" : "")}}
              </ItemGroup>
            </Project>
            """);
        if (sample is null)
            File.WriteAllText(Path.Combine(app, "Program.cs"), program);
        var text = Dotnet.Run(app, "run", "-c", "Release");
        output.WriteLine(text);
        // The app never sets TieredCompilationQuickJitForLoops: GpuNet.Runtime's buildTransitive props did, so the SIMD loops
        // run optimized from their first call.
        var config = File.ReadAllText(Directory.GetFiles(Path.Combine(app, "bin"), name + ".runtimeconfig.json", SearchOption.AllDirectories).Single());
        Assert.Matches(@"""System\.Runtime\.TieredCompilation\.QuickJitForLoops"":\s*false", config);
        return text;
    }

    [Fact]
    public void TheReadmeEmbeddingExampleRunsAgainstThePackages()
    {
        var text = BuildAndRun("embedding", ReadmeExample("Embedding"));
        Assert.Contains("row sums on cpu: 66, 75", text);
    }

    [Fact]
    public void TheReadmeTrainingExampleRunsAgainstThePackagesAndConverges()
    {
        var text = BuildAndRun("training", ReadmeExample("Training"));
        var steps = Regex.Matches(text, @"step (\d+): MSE ([0-9.eE+-]+), (\d+) bytes in use");
        var mse = steps.Select(m => double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(4, mse.Count);
        Assert.True(mse[^1] < 0.01, $"final MSE {mse[^1]}");
        // 2,000 steps of the loop as README writes it: the pool's bytes in use at steps 500, 1000, 1500 and 2000 are one
        // value (the loop as first written leaked one [256, 1] prediction per step: 554 KiB -> 2 MiB).
        var inUse = steps.Select(m => long.Parse(m.Groups[3].Value)).Distinct().ToList();
        Assert.True(inUse.Count == 1, $"bytes in use changed over the steps: {string.Join(", ", inUse)}");
    }

    /// <summary>Each project of samples/ (also built from the sources by the solution) against the packages, run, and its
    /// result line checked.</summary>
    [Theory]
    [InlineData("Embedding", "softmax(c · w) row sums: 1.000, 1.000")]
    [InlineData("Training", "restored model gives the same predictions: True")]
    [InlineData("Onnx", "largest difference from PyTorch's output: ")]
    [InlineData("CustomKernel", "match")]
    public void EverySampleBuildsAgainstThePackagesAndRuns(string sample, string expected)
    {
        var text = BuildAndRun("sample-" + sample.ToLowerInvariant(), "", Path.Combine(feed.Repository, "samples", sample));
        Assert.Contains(expected, text);
        Assert.DoesNotContain("MISMATCH", text);
        Assert.DoesNotContain("did not converge", text);
        if (sample == "Training")
            Assert.Single(Regex.Matches(text, @"(\d+) bytes in use").Select(m => m.Groups[1].Value).Distinct());
        if (sample == "Onnx")
            Assert.True(double.Parse(Regex.Match(text, @"output: ([0-9.E+-]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < 1e-4, text);
    }

    [Fact]
    public void TheCliInstallsAsADotnetToolAndAnswersHelp()
    {
        string tools = Path.Combine(feed.Root, "tools");
        Dotnet.Run(feed.Root, "tool", "install", "GpuNet.Cli", "--version", feed.Version, "--tool-path", tools, "--add-source", feed.Feed);
        string gpunet = Path.Combine(tools, OperatingSystem.IsWindows() ? "gpunet.exe" : "gpunet");
        var help = Dotnet.Process(feed.Root, gpunet, "check", "--help");
        Assert.Contains("--kernel", help);
        var devices = Dotnet.Process(feed.Root, gpunet, "devices");
        output.WriteLine(devices);
        Assert.Contains("cpu-sim", devices);
        var check = Dotnet.Process(feed.Root, gpunet, "check", "--device", "cpu", "--kernel", "softmax");
        Assert.Matches(@"[1-9]\d* passed, 0 failed", check);   // at least one case ran
    }
}
