using System.Runtime.InteropServices;
using TorchSharp;

namespace Scst.Model;

/// <summary>
/// Makes TorchSharp use a chosen libtorch before its first call. With no folder given, TorchSharp loads the
/// libtorch that came with the NuGet package (CPU). With a folder (for example a PyTorch install's
/// <c>torch/lib</c> on a CUDA machine), its libraries are loaded first, so TorchSharp binds to them.
/// </summary>
public static class TorchRuntime
{
    /// <summary>Environment variables consulted, in order, when no folder is configured.</summary>
    public static readonly string[] LibTorchEnvironmentVariables = ["SCST_LIBTORCH", "TORCH_LIB"];

    // Order matters: each library's dependencies are loaded before it. CUDA libraries are optional.
    private static readonly string[] PreloadOrder =
        ["libc10.so", "libtorch_cpu.so", "libc10_cuda.so", "libtorch_cuda.so", "libtorch.so"];

    private static readonly object Gate = new();
    private static string? _initialisedFrom;
    private static bool _initialised;

    /// <summary>The libtorch folder that was preloaded, or null when the packaged libtorch is used.</summary>
    public static string? LibTorchDirectory => _initialisedFrom;

    /// <summary>
    /// Preloads libtorch from <paramref name="libTorchDirectory"/> (or the environment) and initialises
    /// TorchSharp. Safe to call more than once; a different folder after initialisation is an error,
    /// because a process cannot switch libtorch once loaded.
    /// </summary>
    // glibc raises its mmap threshold to the largest block freed (up to 32 MB), so after the first big temporary the
    // 16-32 MB ones (a frozen bf16 layer widened to fp32 for one matmul, per decoding step) come from heap arenas and
    // stay resident, fragmented, after they are freed: GBs at BLIP-2 FlanT5-XL size. A fixed 16 MB threshold sends
    // every block that size or larger (a 2048 × 2048 fp32 matrix is exactly 16 MB) straight to the OS and back, and
    // leaves activations on the heap (4 MB made the XL run spend its time in the kernel). MALLOC_MMAP_THRESHOLD_ in
    // the environment still wins.
    private static void ReturnLargeBuffersToTheSystem()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null) return;
        const int M_MMAP_THRESHOLD = -3;
        try { mallopt(M_MMAP_THRESHOLD, 16 << 20); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc (musl): nothing to tune
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);

    public static void Initialize(string? libTorchDirectory = null)
    {
        lock (Gate)
        {
            if (!_initialised) ReturnLargeBuffersToTheSystem();
            var dir = libTorchDirectory;
            if (string.IsNullOrWhiteSpace(dir))
                dir = LibTorchEnvironmentVariables.Select(Environment.GetEnvironmentVariable)
                    .FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));
            if (_initialised)
            {
                if (!string.IsNullOrWhiteSpace(dir) && !PathsEqual(dir, _initialisedFrom))
                    throw new InvalidOperationException(
                        $"libtorch was already loaded from '{_initialisedFrom ?? "the TorchSharp package"}'; cannot switch to '{dir}' in the same process.");
                return;
            }
            if (!string.IsNullOrWhiteSpace(dir))
            {
                if (!Directory.Exists(dir))
                    throw new DirectoryNotFoundException(
                        $"libtorch folder '{dir}' (from the libtorch setting or ${string.Join("/$", LibTorchEnvironmentVariables)}) does not exist.");
                var loadedAny = false;
                foreach (var name in PreloadOrder)
                {
                    var path = Path.Combine(dir, name);
                    if (!File.Exists(path)) continue;
                    NativeLibrary.Load(path);
                    loadedAny = true;
                }
                if (!loadedAny)
                    throw new FileNotFoundException(
                        $"libtorch folder '{dir}' holds none of {string.Join(", ", PreloadOrder)}.");
                _initialisedFrom = Path.GetFullPath(dir);
            }
            torch.InitializeDeviceType(DeviceType.CPU);
            _initialised = true;
        }
    }

    /// <summary>Resolves "auto" / "cpu" / "cuda" / "cuda:N" to a device, failing clearly when CUDA is missing.</summary>
    public static torch.Device ResolveDevice(string device)
    {
        Initialize();
        var d = device.Trim().ToLowerInvariant();
        if (d == "auto") return torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        if (d.StartsWith("cuda", StringComparison.Ordinal) && !torch.cuda.is_available())
            throw new InvalidOperationException(
                $"device '{device}' was requested but CUDA is not available (set SCST_LIBTORCH to a CUDA libtorch folder, or use device: cpu).");
        return new torch.Device(d);
    }

    private static bool PathsEqual(string a, string? b) =>
        b is not null && string.Equals(Path.GetFullPath(a).TrimEnd('/'), b.TrimEnd('/'), StringComparison.Ordinal);
}
