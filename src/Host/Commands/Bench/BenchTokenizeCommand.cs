using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Scst.Model.Tokenization;

namespace Scst.Host.Commands.Bench;

/// <summary>
/// <c>bench tokenize</c>: single-threaded encode throughput of the SentencePiece tokenizer on a JSON array of strings
/// (what sentencepiece's <c>encode(text)</c> does: normalise, segment, ids). tests/data/spiece/bench_encode.py times
/// sentencepiece on the same strings and runs this in the same script.
/// </summary>
public static class BenchTokenizeCommand
{
    public static Command Create()
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "SentencePiece model file", Required = true };
        var file = new Option<string>("--file") { Description = "JSON array of strings to encode", Required = true };
        var repeat = new Option<int>("--repeat") { Description = "timed passes over the strings (best and median reported)", DefaultValueFactory = _ => 5 };
        var minSeconds = new Option<double>("--min-seconds") { Description = "each pass repeats the strings until it lasts at least this long", DefaultValueFactory = _ => 0.5 };
        var cmd = new Command("tokenize", "Benchmark SentencePiece encoding (strings/s, MB/s of UTF-8 input)");
        foreach (var o in new Option[] { tokenizer, file, repeat, minSeconds }) cmd.Options.Add(o);
        cmd.SetAction(p =>
        {
            var strings = ModelTokenizeCommand.ReadStrings(p.GetValue(file)!);
            var tok = SentencePieceTokenizer.Load(p.GetValue(tokenizer)!);
            var bytes = strings.Sum(s => (long)Encoding.UTF8.GetByteCount(s));
            long tokens = 0, checksum = 0;
            foreach (var s in strings) tokens += tok.Encode(s, addEos: false).Length;
            // Warm up for a second so that tiered JIT has promoted the hot loops before anything is timed.
            for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 1;)
                foreach (var s in strings) checksum += tok.Encode(s, addEos: false).Length;
            var perPass = new List<double>();
            for (var r = 0; r < Math.Max(1, p.GetValue(repeat)); r++)
            {
                var clock = Stopwatch.StartNew();
                var loops = 0;
                do
                {
                    foreach (var s in strings) checksum += tok.Encode(s, addEos: false).Length;
                    loops++;
                } while (clock.Elapsed.TotalSeconds < p.GetValue(minSeconds));
                perPass.Add(clock.Elapsed.TotalSeconds / loops);
            }
            perPass.Sort();
            var (best, median) = (perPass[0], perPass[perPass.Count / 2]);
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Format(inv, "strings {0}, UTF-8 bytes {1}, tokens {2} ({3} in all passes)", strings.Length, bytes, tokens, checksum));
            Console.WriteLine(string.Format(inv, "encode: best {0:F0} strings/s ({1:F2} MB/s), median {2:F0} strings/s ({3:F2} MB/s)",
                strings.Length / best, bytes / best / 1e6, strings.Length / median, bytes / median / 1e6));
            return 0;
        });
        return cmd;
    }
}
