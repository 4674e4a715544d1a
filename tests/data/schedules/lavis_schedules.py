"""LAVIS's learning-rate arithmetic per iteration, as expected values for UpdatePlan's tests.

Typed from salesforce/LAVIS 506965b: lavis/common/optims.py (the three schedulers and their formulas),
lavis/tasks/base_task.py (_train_inner_loop: scheduler.step(cur_epoch=inner_epoch, cur_step=i) before every
iteration; optimizer.step() and zero_grad() when (i + 1) % accum_grad_iters == 0), lavis/runners/runner_base.py
(epochs of len(train_loader) iterations; the training DataLoader has drop_last=True) and runner_iter.py
(for start_iters in range(0, max_iters, iters_per_inner_epoch); inner_epoch = start_iters // iters_per_inner_epoch;
the scheduler's max_epoch = int(max_iters / iters_per_inner_epoch)).

Run: /usr/bin/python3 lavis_schedules.py > lavis_schedules.json
"""
import json
import math


class Opt:  # the one param group the schedulers write ("lr")
    lr = None


def cosine_lr_schedule(optimizer, epoch, max_epoch, init_lr, min_lr):
    optimizer.lr = (init_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * epoch / max_epoch)) + min_lr


def warmup_lr_schedule(optimizer, step, max_step, init_lr, max_lr):
    optimizer.lr = min(max_lr, init_lr + (max_lr - init_lr) * step / max(max_step, 1))


def step_lr_schedule(optimizer, epoch, init_lr, min_lr, decay_rate):
    optimizer.lr = max(min_lr, init_lr * (decay_rate ** epoch))


class LinearWarmupStepLRScheduler:
    def __init__(self, optimizer, max_epoch, min_lr, init_lr, decay_rate=1, warmup_start_lr=-1, warmup_steps=0):
        self.optimizer, self.max_epoch, self.min_lr, self.decay_rate = optimizer, max_epoch, min_lr, decay_rate
        self.init_lr, self.warmup_steps = init_lr, warmup_steps
        self.warmup_start_lr = warmup_start_lr if warmup_start_lr >= 0 else init_lr

    def step(self, cur_epoch, cur_step):
        if cur_epoch == 0:
            warmup_lr_schedule(self.optimizer, cur_step, self.warmup_steps, self.warmup_start_lr, self.init_lr)
        else:
            step_lr_schedule(self.optimizer, cur_epoch, self.init_lr, self.min_lr, self.decay_rate)


class LinearWarmupCosineLRScheduler:
    def __init__(self, optimizer, max_epoch, min_lr, init_lr, warmup_steps=0, warmup_start_lr=-1):
        self.optimizer, self.max_epoch, self.min_lr = optimizer, max_epoch, min_lr
        self.init_lr, self.warmup_steps = init_lr, warmup_steps
        self.warmup_start_lr = warmup_start_lr if warmup_start_lr >= 0 else init_lr

    def step(self, cur_epoch, cur_step):
        if cur_epoch == 0:
            warmup_lr_schedule(self.optimizer, cur_step, self.warmup_steps, self.warmup_start_lr, self.init_lr)
        else:
            cosine_lr_schedule(self.optimizer, cur_epoch, self.max_epoch, self.init_lr, self.min_lr)


class ConstantLRScheduler:
    def __init__(self, optimizer, init_lr, warmup_start_lr=-1, warmup_steps=0):
        self.optimizer, self.lr = optimizer, init_lr
        self.warmup_start_lr = warmup_start_lr if warmup_start_lr >= 0 else init_lr
        self.warmup_steps = warmup_steps

    def step(self, cur_epoch, cur_step):
        if cur_epoch == 0:
            warmup_lr_schedule(self.optimizer, cur_step, self.warmup_steps, self.warmup_start_lr, self.lr)
        else:
            self.optimizer.lr = self.lr


def scheduler(c, opt, max_epoch):
    kw = dict(optimizer=opt, init_lr=c["init_lr"], warmup_start_lr=c["warmup_lr"], warmup_steps=c["warmup_steps"])
    if c["lr_sched"] == "linear_warmup_cosine_lr":
        return LinearWarmupCosineLRScheduler(max_epoch=max_epoch, min_lr=c["min_lr"], **kw)
    if c["lr_sched"] == "linear_warmup_step_lr":
        return LinearWarmupStepLRScheduler(max_epoch=max_epoch, min_lr=c["min_lr"], decay_rate=c["lr_decay_rate"], **kw)
    return ConstantLRScheduler(**kw)


def inner_loop(c, sched, opt, epoch, iters_per_epoch, out):
    for i in range(iters_per_epoch):
        sched.step(cur_epoch=epoch, cur_step=i)
        out["iteration_lrs"].append(opt.lr)
        out["_pending"] += 1  # loss.backward(): gradients accumulate until zero_grad
        if (i + 1) % c["accum_grad_iters"] == 0:
            out["updates"].append({"lr": opt.lr, "micro_batches": out["_pending"], "epoch": epoch, "step": i})
            out["_pending"] = 0


def simulate(c):
    opt, out = Opt(), {"iteration_lrs": [], "updates": [], "_pending": 0}
    if c["runner"] == "runner_base":
        sched = scheduler(c, opt, c["max_epoch"])
        iters = c["train_samples"] // c["batch_size_train"]  # len(DataLoader(drop_last=True))
        for cur_epoch in range(c["max_epoch"]):
            inner_loop(c, sched, opt, cur_epoch, iters, out)
    else:
        max_iters, inner = c["max_iters"], c["iters_per_inner_epoch"]
        sched = scheduler(c, opt, int(max_iters / inner))
        for start_iters in range(0, max_iters, inner):
            inner_loop(c, sched, opt, start_iters // inner, inner, out)
    del out["_pending"]
    return out


BASE = dict(lr_sched="linear_warmup_cosine_lr", init_lr=1e-3, min_lr=1e-5, warmup_lr=1e-6, warmup_steps=5, lr_decay_rate=0.9)
CONFIGS = [
    dict(BASE, name="base_cosine_accum1", runner="runner_base", train_samples=50, batch_size_train=4, accum_grad_iters=1, max_epoch=3),
    dict(BASE, name="base_cosine_accum5_leftover", runner="runner_base", train_samples=50, batch_size_train=4, accum_grad_iters=5, max_epoch=3),
    dict(BASE, name="base_step_accum2", runner="runner_base", lr_sched="linear_warmup_step_lr", lr_decay_rate=0.5,
         train_samples=30, batch_size_train=4, accum_grad_iters=2, max_epoch=4, warmup_steps=3),
    dict(BASE, name="base_constant_accum4_leftover", runner="runner_base", lr_sched="constant_lr",
         train_samples=20, batch_size_train=3, accum_grad_iters=4, max_epoch=3, warmup_steps=2),
    dict(BASE, name="iter_cosine_not_multiple_accum3", runner="runner_iter", train_samples=37, batch_size_train=4,
         accum_grad_iters=3, max_iters=10, iters_per_inner_epoch=4),
    dict(BASE, name="iter_cosine_accum1", runner="runner_iter", train_samples=37, batch_size_train=4,
         accum_grad_iters=1, max_iters=20, iters_per_inner_epoch=5, warmup_steps=3),
    dict(BASE, name="iter_step_accum2", runner="runner_iter", lr_sched="linear_warmup_step_lr", lr_decay_rate=0.5,
         train_samples=37, batch_size_train=4, accum_grad_iters=2, max_iters=12, iters_per_inner_epoch=6, warmup_steps=3),
]

if __name__ == "__main__":
    print(json.dumps([dict(config=c, **simulate(c)) for c in CONFIGS], indent=1))
