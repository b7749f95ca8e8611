"""PyTorch peer for pdekit's FactFormer and IFactFormer (`[train.factformer]`): a PyTorch mirror of
the same architecture with the same parameter count, since the reference code (BaratiLab/
FactFormer) is not a package. What `pdekit bench train --config ... --peers` runs for a
FactFormer config: one training step (forward, relative L2 loss, backward, Adam) on random data,
on CPU; median time and the steps' peak resident memory.

The model, as pdekit builds it (operators/src/models/factformer.rs, layers/axial.rs):
    x ─ grid coordinates appended ─ Linear ─ [h ← h + s·FactAttention(h)] × depth ─ MLP ─ y
    (s = 1, or 1/depth with one shared layer when implicit)
    FactAttention(u): n = LayerNorm(u); v = W_v n (heads × dim_head channels)
      per axis m: p_m = MLP_m(LayerNorm(W_m mean_{other axes}(n)))  (gated GELU MLP)
                  q, k = W_q p_m, W_k p_m, rotary-embedded; K_m = q kᵀ / (√d_k · S_m) per head
      chained: z = K_D(…K_1 v); parallel: z = W_merge [K_1 v, …, K_D v]
      y = W_2 GELU(W_1 InstanceNorm(z))

Setup (once, from the repository root):
    python3 -m venv bench/peers/.venv
    bench/peers/.venv/bin/pip install torch
Run:
    bench/peers/.venv/bin/python bench/peers/factformer_torch.py --width 64 --depth 8 --heads 4 \
        --grid 64 64 --batch 20 --steps 10 --threads 2
Prints (or writes with --out) one JSON object.
"""

import argparse
import json
import math
import os
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def status_mib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rotary_tables(points, dim):
    """sin and cos of the angle 64·(i/S)·10000^(-2c/dim), [S, dim/2]."""
    x = torch.arange(points, dtype=torch.float32) / points
    freq = 10000.0 ** (-(2 * torch.arange(dim // 2, dtype=torch.float32)) / dim)
    angle = 64.0 * x[:, None] * freq[None, :]
    return angle.sin(), angle.cos()


def rotate(t, sin, cos):
    """Channels (c, c + d/2) of each head turned by the point's angle; t: [b, h, S, d]."""
    half = t.shape[-1] // 2
    a, b = t[..., :half], t[..., half:]
    return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)


class AxialProjection(nn.Module):
    def __init__(self, axis, dims, width, latent):
        super().__init__()
        self.axis, self.dims = axis, dims
        self.to_in = nn.Linear(width, width, bias=False)
        self.norm = nn.LayerNorm(width)
        self.gate = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, latent)

    def forward(self, n):
        other = tuple(1 + a for a in range(self.dims) if a != self.axis)
        m = n.mean(dim=other)  # [b, S, c]
        g1, g2 = self.gate(self.norm(self.to_in(m))).chunk(2, dim=-1)
        return self.out(F.gelu(g1) * g2)


class AxialKernel(nn.Module):
    def __init__(self, latent, heads, dim):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.to_q = nn.Linear(latent, heads * dim, bias=False)
        self.to_k = nn.Linear(latent, heads * dim, bias=False)

    def forward(self, p):
        b, s, _ = p.shape
        q = self.to_q(p).view(b, s, self.heads, self.dim).transpose(1, 2)
        k = self.to_k(p).view(b, s, self.heads, self.dim).transpose(1, 2)
        sin, cos = rotary_tables(s, self.dim)
        q, k = rotate(q, sin, cos), rotate(k, sin, cos)
        return torch.einsum("bhic,bhjc->bhij", q, k) / (math.sqrt(self.dim) * s)


class FactAttention(nn.Module):
    def __init__(self, dims, width, heads, dim_head, latent, kernel_multiplier, variant):
        super().__init__()
        self.dims, self.heads, self.dim_head, self.variant = dims, heads, dim_head, variant
        hd = heads * dim_head
        self.norm = nn.LayerNorm(width)
        self.to_v = nn.Linear(width, hd, bias=False)
        self.projections = nn.ModuleList(
            AxialProjection(m, dims, width, latent) for m in range(dims))
        self.kernels = nn.ModuleList(
            AxialKernel(latent, heads, dim_head * kernel_multiplier) for _ in range(dims))
        self.merge = nn.Linear(dims * hd, hd, bias=False) if variant == "parallel" else None
        self.out1 = nn.Linear(hd, width, bias=False)
        self.out2 = nn.Linear(width, width, bias=False)

    def mix(self, kern, v, axis):
        # v: [b, h, S_1, …, S_D, d]; kern: [b, h, S, S] along grid axis `axis`.
        letters = "xyz"[: self.dims]
        src = letters.replace(letters[axis], "j")
        dst = letters.replace(letters[axis], "i")
        return torch.einsum(f"bhij,bh{src}c->bh{dst}c", kern, v)

    def forward(self, u):
        b, *grid, _ = u.shape
        n = self.norm(u)
        v = self.to_v(n).view(b, *grid, self.heads, self.dim_head)
        v = v.movedim(-2, 1)  # [b, h, grid…, d]
        kernels = [k(p(n)) for p, k in zip(self.projections, self.kernels)]
        if self.merge is None:
            z = v
            for m, kern in enumerate(kernels):
                z = self.mix(kern, z, m)
            z = z.movedim(1, -2).reshape(b, *grid, -1)
        else:
            parts = [self.mix(kern, v, m).movedim(1, -2).reshape(b, *grid, -1)
                     for m, kern in enumerate(kernels)]
            z = self.merge(torch.cat(parts, dim=-1))
        z = F.instance_norm(z.movedim(-1, 1)).movedim(1, -1)
        return self.out2(F.gelu(self.out1(z)))


class FactFormer(nn.Module):
    def __init__(self, args, in_channels=1, out_channels=1):
        super().__init__()
        dims = len(args.grid)
        w = args.width
        dim_head = args.dim_head or w // args.heads
        self.embedding = args.embedding
        coords = dims * (2 if args.embedding == "periodic" else 1)
        self.lifting = nn.Linear(in_channels + coords, w)
        count = 1 if args.implicit else args.depth
        self.layers = nn.ModuleList(
            FactAttention(dims, w, args.heads, dim_head, args.latent or w,
                          args.kernel_multiplier, args.variant) for _ in range(count))
        self.depth, self.implicit = args.depth, args.implicit
        self.proj1 = nn.Linear(w, 2 * w)
        self.proj2 = nn.Linear(2 * w, out_channels)

    def coordinates(self, grid):
        axes = []
        for n in grid:
            t = torch.arange(n, dtype=torch.float32) / n
            if self.embedding == "periodic":
                axes.append(torch.stack((torch.sin(2 * math.pi * t), torch.cos(2 * math.pi * t)), -1))
            else:
                axes.append(t[:, None])
        feats = []
        for a, table in enumerate(axes):
            shape = [1] * len(grid) + [table.shape[-1]]
            shape[a] = grid[a]
            feats.append(table.view(shape).expand(*grid, table.shape[-1]))
        return torch.cat(feats, dim=-1)

    def forward(self, x):
        b, *grid, _ = x.shape
        c = self.coordinates(grid).expand(b, *grid, -1)
        h = self.lifting(torch.cat((x, c), dim=-1))
        for i in range(self.depth):
            layer = self.layers[0 if self.implicit else i]
            h = h + (layer(h) / self.depth if self.implicit else layer(h))
        return self.proj2(F.gelu(self.proj1(h)))


def relative_l2(pred, target):
    diff = (pred - target).flatten(1).norm(dim=1)
    return (diff / target.flatten(1).norm(dim=1)).mean()


def time_steps(args):
    torch.manual_seed(0)
    x = torch.rand(args.batch, *args.grid, 1)
    y = torch.rand(args.batch, *args.grid, 1)
    model = FactFormer(args)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = relative_l2(model(x), y)
        loss.backward()
        opt.step()

    peak_is_steps = reset_peak()
    before = status_mib("VmRSS:")
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_seconds_median": statistics.median(times),
        "step_seconds_min": min(times),
        "steps": args.steps,
        "rss_before_steps_mib": before,
        "step_peak_rss_mib": status_mib("VmHWM:") if peak_is_steps else None,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dim-head", type=int, default=0, help="0: width / heads")
    ap.add_argument("--latent", type=int, default=0, help="0: width")
    ap.add_argument("--kernel-multiplier", type=int, default=2)
    ap.add_argument("--variant", default="chained", choices=["chained", "parallel"])
    ap.add_argument("--implicit", action="store_true")
    ap.add_argument("--embedding", default="linear", choices=["linear", "periodic"])
    ap.add_argument("--grid", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "config": vars(args),
        "models": {},
    }
    name = "mirror IFactFormer" if args.implicit else "mirror FactFormer"
    out["models"][name] = time_steps(args)
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out + ".partial", "w") as f:
            f.write(text)
        os.replace(args.out + ".partial", args.out)
    else:
        print(text)


if __name__ == "__main__":
    main()
