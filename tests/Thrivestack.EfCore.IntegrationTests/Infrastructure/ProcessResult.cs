namespace Thrivestack.EfCore.IntegrationTests.Infrastructure;

internal sealed record ProcessResult(string CommandLine, int ExitCode, string StandardOutput, string StandardError)
{
    public bool Succeeded => ExitCode == 0;

    public string Describe() =>
        $"$ {CommandLine}{Environment.NewLine}exit code: {ExitCode}{Environment.NewLine}" +
        $"stdout: {StandardOutput.Trim()}{Environment.NewLine}stderr: {StandardError.Trim()}";
}
