using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/Scst.Benchmarks -- --filter '*' --job short
BenchmarkSwitcher.FromAssembly(typeof(Scst.Benchmarks.CiderBenchmarks).Assembly).Run(args);
