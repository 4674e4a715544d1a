using Scst.Training.Configuration;
using Scst.Model.Generation;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// How validation/test captions (and the SCST greedy baseline) are decoded from the run section, as LAVIS's caption task
/// calls <c>Blip2T5.generate</c>: <c>max_new_tokens = max_len</c>, <c>min_length = min_len</c> (HF's, the decoder start
/// token counted), <c>repetition_penalty</c>, <c>length_penalty</c>, and with <c>use_nucleus_sampling</c> transformers'
/// sampling with <c>top_p</c>, <c>temperature</c> and the <c>top_k</c> 50 that LAVIS leaves at transformers' default.
/// </summary>
public static class EvaluationDecoding
{
    /// <summary>transformers' <c>GenerationConfig.top_k</c> default, active in LAVIS's nucleus sampling (it passes no top_k).</summary>
    public const int HfDefaultTopK = 50;

    public static GenerationOptions Options(RunOptions run, Generator? sampling) => run.UseNucleusSampling
        ? new GenerationOptions
        {
            DoSample = true, TopP = run.TopP, TopK = HfDefaultTopK, Temperature = run.Temperature, Generator = sampling,
            MaxNewTokens = run.MaxLen, MinLength = run.MinLen, RepetitionPenalty = run.RepetitionPenalty,
        }
        : new GenerationOptions
        {
            NumBeams = run.NumBeams, NumReturnSequences = 1, LengthPenalty = run.LengthPenalty,
            MaxNewTokens = run.MaxLen, MinLength = run.MinLen, RepetitionPenalty = run.RepetitionPenalty,
        };

    /// <summary>The greedy baseline of Rennie et al.: greedy, with the evaluation's length bounds and repetition penalty.</summary>
    public static GenerationOptions Greedy(RunOptions run) =>
        new() { MaxNewTokens = run.MaxLen, MinLength = run.MinLen, RepetitionPenalty = run.RepetitionPenalty };

    /// <summary>
    /// A fresh generator per evaluation for nucleus sampling, seeded from <c>run.seed</c> (mixed, so it is not the
    /// training sampler's stream): the same weights give the same captions in every evaluation. Null without sampling.
    /// </summary>
    public static Generator? SamplingGenerator(RunOptions run, Device device) =>
        run.UseNucleusSampling ? new Generator(SamplingSeed(run.Seed), device) : null;

    public static ulong SamplingSeed(int seed) => ((ulong)(uint)seed ^ 0x5DEECE66DUL) * 0x9E3779B97F4A7C15UL;
}
