using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Scst.Model.Optim;
using Scst.Reward;
using Scst.Training.Configuration;
using static TorchSharp.torch;

namespace Scst.Training;

/// <summary>
/// The learning half of a run, shared by both drivers (the plain trainer's loop and the actor learner): the
/// <see cref="RunSetup"/> plus what only learning needs — the optimizer, the CE or SCST update, the reward, the
/// evaluator and the run's checkpoints. Drivers decide when to run an update; everything around it (validation, best
/// and periodic checkpoints, resume, the final evaluation and summary) is here, once.
/// </summary>
public sealed class Learner : IDisposable
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private double _elapsedBefore;
    private (long Update, double Seconds) _lastLine;

    public required RunSetup Setup { get; init; }
    public required string RunDir { get; init; }
    public required Optimization Optimization { get; init; }
    /// <summary>The CE update (CE runs) — null in SCST runs.</summary>
    public required CeUpdate? Ce { get; init; }
    /// <summary>The SCST update, this process's rollout generator and the CIDEr-D reward (SCST runs) — null in CE runs.</summary>
    public required ScstUpdate? Scst { get; init; }
    public required RolloutGenerator? Rollouts { get; init; }
    public required CiderDReward? Reward { get; init; }
    public required Evaluator Evaluator { get; init; }
    public required CheckpointStore Checkpoints { get; init; }
    public required ILogger Log { get; init; }

    public ScstConfig Config => Setup.Config;
    public Policy Policy => Setup.Policy;
    public CaptionCorpus Corpus => Setup.Corpus;
    public string Mode => Config.IsScst ? "scst" : "ce";
    /// <summary>What the data cursor walks: CE's annotations (<c>ce_sample_unit: caption</c>) or training images.</summary>
    public int TrainSamples => Ce?.TrainSamples ?? Corpus.Train.Count;
    public string SampleUnit => Ce?.ByCaption == true ? "caption" : "image";
    public UpdatePlan Plan => Optimization.Plan;
    public long TotalUpdates => Plan.TotalUpdates;
    /// <summary>Training seconds of this run, across resumes.</summary>
    public double Elapsed => _elapsedBefore + _clock.Elapsed.TotalSeconds;

    public static Learner Create(ScstConfig config, string runDir, IMetricsSink metrics, ILogger log)
    {
        FaultInjection.Validate();
        Directory.CreateDirectory(runDir);
        var checkpoints = new CheckpointStore(Path.Combine(runDir, "checkpoints"));
        var setup = RunSetup.Load(config, checkpoints.Directory, log);
        var (policy, train) = (setup.Policy, setup.Corpus.Train);
        var ce = config.IsScst ? null : new CeUpdate(config, policy, train);
        var optimization = setup.CreateOptimization(ce?.TrainSamples ?? train.Count, log);
        return new Learner
        {
            Setup = setup, RunDir = runDir, Optimization = optimization, Ce = ce,
            Scst = config.IsScst ? new ScstUpdate(config, policy, train, optimization) : null,
            Rollouts = config.IsScst ? new RolloutGenerator(policy, train, config) : null,
            Reward = config.IsScst ? new CiderDReward(RunSetup.TrainDocumentFrequency(config, setup.Corpus)) : null,
            Evaluator = new Evaluator(config, policy, setup.Corpus, metrics, log),
            Checkpoints = checkpoints,
            Log = log,
        };
    }

    /// <summary>A data cursor over <see cref="TrainSamples"/> in this run's order (LAVIS's runners drop a partial last batch).</summary>
    public DataCursor NewCursor(int epoch = 0, int position = 0) => new(TrainSamples, Config.Run.Seed, epoch, position, Plan.DropLast);

    public DataCursor Cursor(RunProgress p) => NewCursor(p.Epoch, p.Position);

    public RunProgress Start() => RunProgress.Start(Mode, SampleUnit);

    /// <summary>The readable line of <see cref="UpdateLog"/> every <c>run.log_freq</c> updates and after the last, with the time per update since the previous line.</summary>
    public void LogUpdate(long update, IReadOnlyDictionary<string, double> values)
    {
        if (!UpdateLog.Due(update, Config.Run.LogFreq) && !(Config.Run.LogFreq > 0 && update == TotalUpdates)) return;
        var now = _clock.Elapsed.TotalSeconds;
        var perUpdate = _lastLine.Update < update ? (now - _lastLine.Seconds) / (update - _lastLine.Update) : double.NaN;
        _lastLine = (update, now);
        Log.LogInformation("{Line}", UpdateLog.Line(Mode, update, TotalUpdates, values, perUpdate));
    }

    /// <summary>
    /// After an update: validation when due (a new best is saved as "best"; patience may run out) and the periodic
    /// "latest" checkpoint. <paramref name="extraState"/>: driver keys stored beside the progress.
    /// </summary>
    public (RunProgress Progress, bool StopEarly) AfterUpdate(RunProgress p, JsonObject? extraState = null)
    {
        var stop = false;
        if (Evaluator.Due(p.Update, TotalUpdates))
        {
            (p, var improved, stop) = Evaluator.Validate(p);
            if (improved) Save(p, extraState, "best");
        }
        if (p.Update % Config.Run.CheckpointEvery == 0) Save(p, extraState, "latest");
        return (p, stop);
    }

    /// <summary>
    /// The end of a run: the final "latest" checkpoint, then (when <paramref name="completed"/>) the best validation
    /// checkpoint's val and test scores, as papers report them; writes summary.json.
    /// </summary>
    public TrainSummary Finish(RunProgress p, bool completed, JsonObject? extraState = null, JsonObject? extraSummary = null)
    {
        var last = Save(p, extraState, "latest");
        var metrics = new Dictionary<string, IReadOnlyDictionary<string, double>>();
        string? bestFile = null;
        if (completed)
        {
            if (Checkpoints.Find("best") is { } best)
            {
                PolicyWeights.LoadFromCheckpoint(Policy.Model, Path.Combine(Checkpoints.Directory, "best.json"), Setup.Base);
                bestFile = Path.Combine(Checkpoints.Directory, best.File);
            }
            metrics = Evaluator.Final(p.Update);
        }
        var summary = new TrainSummary(Mode, p.Update, p.Samples, Elapsed, last.Sha256, Path.Combine(Checkpoints.Directory, last.File), bestFile,
            p.BestStep >= 0 ? p.BestStep : null, completed, metrics,
            RunSummary.Settings(Config, Policy, Corpus.Train.Count, TrainSamples, SampleUnit, Plan.UpdatesPerEpoch));
        RunSummary.Write(RunDir, summary, Setup.Parameters, extraSummary);
        return summary;
    }

    /// <summary>Writes model (what trains, on a pretrained base) and optimizer with the run's progress; keeps only the files a pointer names.</summary>
    public CheckpointStore.Entry Save(RunProgress p, JsonObject? extraState, params string[] tags)
    {
        using var scope = NewDisposeScope();
        var tensors = PolicyModel.Carried(Policy.Model, Setup.Base).ToDictionary(x => x.Name, x => x.Parameter.detach().cpu(), StringComparer.Ordinal);
        var opt = Optimization.State();
        foreach (var (key, t) in opt.Tensors) tensors["optim." + key] = t;
        var state = (p with { ElapsedS = Elapsed }).ToJson(Config.Run);
        state["optimizer"] = opt.Scalars.ToJson();
        state["seed"] = Config.Run.Seed;
        state["base"] = Setup.Base?.ToJson();
        if (extraState is not null)
            foreach (var (k, v) in extraState) state[k] = v?.DeepClone();
        var name = tags.Contains("best") && tags.Length == 1 ? "best" : $"step_{p.Update:D7}";
        var entry = Checkpoints.Save(name, tensors, state, tags);
        PruneOldCheckpoints();
        return entry;
    }

    /// <summary>Loads model and optimizer from the checkpoint <paramref name="tag"/> points at; returns its progress and state.</summary>
    public (RunProgress Progress, JsonObject State, string File) Restore(string tag)
    {
        var (tensors, state, entry) = Checkpoints.Load(tag);
        try
        {
            PolicyModel.Apply(Policy.Model, tensors, Setup.Base, PretrainedBase.Recorded(state), entry.File);
            var optTensors = tensors.Where(kv => kv.Key.StartsWith("optim.", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key["optim.".Length..], kv => kv.Value);
            Optimization.Load(new OptimizerCheckpoint(optTensors, OptimizerScalars.FromJson(state["optimizer"]!.GetValue<string>(), entry.File)));
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        var progress = RunProgress.FromJson(state, entry.File, Config.Run, Mode, SampleUnit);
        _elapsedBefore = progress.ElapsedS;
        _clock.Restart();
        _lastLine = (progress.Update, 0);
        return (progress, state, entry.File);
    }

    // Keep the files a pointer names; older step files only cost disk.
    private void PruneOldCheckpoints()
    {
        var keep = new[] { "latest", "best" }.Select(Checkpoints.Find).Where(e => e is not null).Select(e => e!.File).ToHashSet();
        foreach (var f in Directory.EnumerateFiles(Checkpoints.Directory, "step_*.safetensors"))
            if (!keep.Contains(Path.GetFileName(f)))
            {
                File.Delete(f);
                File.Delete(f + ".sha256");
            }
    }

    public void Dispose() => Setup.Dispose();
}
