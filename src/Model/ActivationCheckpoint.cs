using Scst.Model.Precision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Scst.Model;

/// <summary>
/// Activation checkpointing (LAVIS's <c>use_grad_checkpoint</c>, HF's <c>gradient_checkpointing</c>; TorchSharp has no
/// <c>torch.utils.checkpoint</c>): a block's forward runs without a graph, keeping only its inputs, and backward runs it
/// again with gradients on detached copies of them and back-propagates the incoming gradient through that. Memory drops
/// from every intermediate of every block to the blocks' inputs; the price is one more forward per block in backward.
/// The recomputation draws the same dropout masks and runs under the autocast dtype and call mode of the forward, so the
/// loss and every gradient are those of the plain forward.
/// </summary>
public static class ActivationCheckpoint
{
    private static long _recomputed;

    /// <summary>How many block recomputations backward has run in this process (tests, logs).</summary>
    public static long Recomputed => Interlocked.Read(ref _recomputed);

    /// <summary>
    /// <paramref name="forward"/>(<paramref name="inputs"/>), checkpointed when <paramref name="enabled"/>, the caller is
    /// training, gradients are on and an input or a parameter of <paramref name="block"/> needs one; run as is otherwise
    /// (eval, no_grad, everything frozen: no overhead). <paramref name="forward"/> must use only its arguments and
    /// <paramref name="block"/>'s parameters.
    /// </summary>
    public static Tensor Call(bool enabled, bool training, nn.Module block, Func<Tensor[], Tensor> forward, params Tensor[] inputs)
    {
        if (!enabled || !training || !is_grad_enabled()) return forward(inputs);
        // Parameters enter the function as inputs too: the node then has edges to them, so their gradients reach .grad
        // through the engine (also when no input needs one, e.g. a trained first layer over frozen embeddings).
        var trained = block.parameters().Where(p => p.requires_grad).ToArray();
        if (trained.Length == 0 && !inputs.Any(t => t.requires_grad)) return forward(inputs);
        var call = new Saved(forward, inputs.Length, trained, Autocast.DType, CallMode.Current, RngReplay.Capture(inputs));
        var vars = new object[1 + inputs.Length + trained.Length];
        vars[0] = call;
        inputs.CopyTo(vars, 1);
        trained.CopyTo(vars, 1 + inputs.Length);
        return CheckpointFunction.apply(vars);
    }

    private sealed record Saved(Func<Tensor[], Tensor> Forward, int InputCount, Parameter[] Trained, ScalarType? Amp, bool? Mode, RngReplay Rng);

    private sealed class CheckpointFunction : autograd.SingleTensorFunction<CheckpointFunction>
    {
        public override string Name => nameof(ActivationCheckpoint);

        // Runs with gradients off (the Function API's forward always does): nothing but the inputs is kept.
        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var call = (Saved)vars[0];
            var inputs = vars.Skip(1).Take(call.InputCount).Cast<Tensor>().ToArray();
            ctx.save_for_backward([.. inputs]);
            ctx.save_data("call", call);
            return call.Forward(inputs);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var call = (Saved)ctx.get_data("call");
            var result = new List<Tensor>(new Tensor[1 + call.InputCount + call.Trained.Length]);
            using (var scope = NewDisposeScope())
            {
                var saved = ctx.get_saved_variables();
                // Backward may run on an autograd worker thread (CUDA), where none of the forward's thread state is set.
                using var grad = enable_grad();
                using var amp = Autocast.Enter(call.Amp);
                using var mode = CallMode.Restore(call.Mode);
                var inputs = saved.Select(t => t.requires_grad ? t.detach().requires_grad_(true) : t.detach()).ToArray();
                Tensor output;
                using (call.Rng.Replay()) output = call.Forward(inputs);
                var wrt = new List<(int Slot, Tensor Tensor)>();
                for (var i = 0; i < inputs.Length; i++) if (inputs[i].requires_grad) wrt.Add((1 + i, inputs[i]));
                for (var i = 0; i < call.Trained.Length; i++) wrt.Add((1 + call.InputCount + i, call.Trained[i]));
                if (output.requires_grad)
                {
                    var grads = autograd.grad([output], [.. wrt.Select(w => w.Tensor)], [gradOutput], allow_unused: true);
                    for (var i = 0; i < wrt.Count; i++)
                        if (!grads[i].IsInvalid) result[wrt[i].Slot] = grads[i].MoveToOuterDisposeScope();
                }
            }
            Interlocked.Increment(ref _recomputed);
            return result;
        }
    }

    /// <summary>
    /// What makes the recomputation draw the forward's dropout masks, as PyTorch's <c>preserve_rng_state</c>: the CPU
    /// generator's state is saved and replayed exactly (the recomputed masks, and the stream after backward, are those
    /// of a run without checkpointing). TorchSharp cannot read the CUDA generator's state, so on CUDA each checkpointed
    /// forward first reseeds it from a seed drawn from the CPU generator and the recomputation reseeds it the same way:
    /// the masks match between forward and recomputation, but they are not the ones an unchecked run would draw.
    /// </summary>
    private sealed class RngReplay
    {
        private readonly byte[] _cpu;
        private readonly long? _cudaSeed;

        private RngReplay(byte[] cpu, long? cudaSeed) { _cpu = cpu; _cudaSeed = cudaSeed; }

        public static RngReplay Capture(Tensor[] inputs)
        {
            var cpu = CpuState();
            long? seed = null;
            if (inputs.Any(t => t.device.type == DeviceType.CUDA))
            {
                using var s = randint(long.MaxValue, [1], dtype: ScalarType.Int64);
                seed = s.item<long>();
                cuda.manual_seed_all(seed.Value);
            }
            return new RngReplay(cpu, seed);
        }

        private static byte[] CpuState()
        {
            using var g = Generator.Default;
            using var state = g.get_state();
            return state.data<byte>().ToArray();
        }

        private static void SetCpuState(byte[] bytes)
        {
            using var g = Generator.Default;
            using var state = tensor(bytes, dtype: ScalarType.Byte);
            g.set_state(state);
        }

        /// <summary>Sets the forward's state until disposed, then puts the CPU generator back where it was.</summary>
        public Restorer Replay()
        {
            var now = CpuState();
            SetCpuState(_cpu);
            if (_cudaSeed is long s) cuda.manual_seed_all(s);
            return new Restorer(now);
        }

        public readonly struct Restorer(byte[] state) : IDisposable
        {
            public void Dispose() => SetCpuState(state);
        }
    }
}
