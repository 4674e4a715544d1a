using Scst.Training.Configuration;

namespace Scst.Host.Configuration;

// LAVIS's runner and launcher keys of the run section: each maps to what this trainer does, or is refused with ours.
public static partial class ConfigLoader
{
    private static void ReadLavisRunner(YamlSection s, RunOptions run)
    {
        if (run.WorldSize != 1)
            s.Error("world_size", $"world_size {run.WorldSize} asks for LAVIS's data-parallel processes, which are not implemented: use 1 and scale SCST with cluster nodes (--role rollout, docs/cluster.md)");
        // With world_size 1, LAVIS's distributed mode is a group of one process: the single process that runs here.
        s.GetBool("distributed", false);
        var distUrl = s.GetOptionalString("dist_url");
        if (distUrl is not null && distUrl != "env://")
            s.Error("dist_url", $"'{distUrl}' is a torch.distributed address; nodes here find each other with --seed-nodes akka.tcp://scst@HOST:PORT (docs/cluster.md); use env:// (the launcher's environment, LAVIS's value) or remove it");
        if (s.GetBool("evaluate", false))
            s.Error("evaluate", "evaluate-only runs are the eval command: eval --config FILE --checkpoint PATH --split test");
        if (!s.GetBool("report_metric", true))
            s.Error("report_metric", "captioning metrics are always computed (validation run.best_metric picks the best checkpoint): remove report_metric: false");
        if (s.GetOptionalString("resume_ckpt_path") is not null)
            s.Error("resume_ckpt_path", "resume with train --resume (continues from checkpoints/latest.json in --run-dir, data order and RNG included)");
        if (!s.GetBool("save_last", true))
            s.Error("save_last", "the last checkpoint is always written (latest.json: --resume and summary.json's final_checkpoint_sha256 need it): remove save_last: false");
        s.Refuse("save_freq", "LAVIS counts it in epochs; set run.checkpoint_every (updates between latest checkpoints)");
        s.Refuse("val_freq", "LAVIS counts it in epochs; set run.eval_every (updates between validations)");
        s.Refuse("use_dist_eval_sampler", "it splits evaluation over LAVIS's data-parallel ranks; evaluation runs whole in the learner here (world_size 1): remove it");
    }
}
