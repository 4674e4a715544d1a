"""torch.optim.AdamW with betas (0.9, 0.95) on fixed gradients: expected values for OptimTests.

Two parameter groups as LAVIS's lr_layer_decay makes them: the second runs at lr * lr_scale (0.8^2), the rate the
scheduler gives a group with that scale. Run: /usr/bin/python3 adamw_beta2.py > adamw_beta2.json (torch 1.13).
"""
import json
import torch

torch.set_default_dtype(torch.float64)
a = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
b = torch.nn.Parameter(torch.tensor([[0.25, -0.75], [1.5, 0.1]]))
lr, scale = 0.01, 0.8 ** 2
opt = torch.optim.AdamW([{"params": [a], "weight_decay": 0.05}, {"params": [b], "weight_decay": 0.0, "lr": lr * scale}],
                        lr=lr, betas=(0.9, 0.95), eps=1e-8)
grads_a = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [-0.3, 0.2, 0.2]]
grads_b = [[[1.0, -0.5], [0.2, 0.0]], [[-0.4, 0.3], [0.1, 2.0]], [[0.6, 0.6], [-1.0, 0.5]]]
for ga, gb in zip(grads_a, grads_b):
    a.grad, b.grad = torch.tensor(ga), torch.tensor(gb)
    opt.step()
print(json.dumps({"torch": torch.__version__, "lr": lr, "lr_scale": scale, "beta2": 0.95, "weight_decay": 0.05,
                  "grads_a": grads_a, "grads_b": grads_b, "a": a.tolist(), "b": b.tolist()}, indent=1))
