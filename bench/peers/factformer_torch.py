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

With --check CHECKPOINT --data FILE it instead loads a pdekit FactFormer checkpoint's weights and
normalisers into the mirror and scores the checkpoint's test split (rows train_samples..+test_samples
of FILE), so the mirror's relative L2 can be compared with pdekit's (`pdekit evaluate`): the check
that the two compute the same function.

Setup (once, from the repository root):
    python3 -m venv bench/peers/.venv
    bench/peers/.venv/bin/pip install torch h5py
Run:
    bench/peers/.venv/bin/python bench/peers/factformer_torch.py --width 64 --depth 8 --heads 4 \
        --grid 64 64 --batch 20 --steps 10 --threads 2
    bench/peers/.venv/bin/python bench/peers/factformer_torch.py \
        --check runs/ns_ffno/factformer/checkpoint.safetensors --data data/ns_ffno_64.h5
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


def read_checkpoint(path):
    """The tensors and metadata of a pdekit safetensors checkpoint (no safetensors package)."""
    import numpy as np

    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        body = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        assert t["dtype"] == "F32", (name, t["dtype"])
        tensors[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(t["shape"])
    return tensors, meta


def check(args):
    """The mirror with a checkpoint's weights, scored on its test split."""
    import h5py
    import numpy as np

    tensors, meta = read_checkpoint(args.check)
    spec = json.loads(meta["model"])
    data = json.loads(meta["data"])
    assert spec["kind"] == "factformer", spec["kind"]
    args.width, args.depth, args.heads = spec["width"], spec["depth"], spec["heads"]
    args.dim_head, args.latent = spec["dim_head"], spec["latent"]
    args.kernel_multiplier, args.variant = spec["kernel_multiplier"], spec["variant"]
    args.implicit, args.embedding = spec["implicit"], spec.get("embedding", "linear")
    start, count = data["train_samples"], data["test_samples"]
    with h5py.File(args.data, "r") as f:
        x = np.asarray(f[data["input"]][start:start + count], dtype=np.float64)
        y = np.asarray(f[data["output"]][start:start + count], dtype=np.float64)
    # Channels last; a leading axis of an output (snapshots) becomes its channels.
    x = x[..., None] if x.ndim == 3 else np.moveaxis(x, 1, -1)
    y = y[..., None] if y.ndim == 3 else np.moveaxis(y, 1, -1)
    args.grid = list(x.shape[1:-1])
    model = FactFormer(args, x.shape[-1], y.shape[-1])
    params = dict(model.named_parameters())
    state = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            continue
        t = torch.from_numpy(value.copy())
        target = (name.replace("projection.fc1", "proj1").replace("projection.fc2", "proj2")
                  .replace(".out.fc1", ".out1").replace(".out.fc2", ".out2"))
        for m in range(len(args.grid)):
            target = (target.replace(f".axis{m}.project.", f".projections.{m}.")
                      .replace(f".axis{m}.kernel.", f".kernels.{m}."))
        own = params[target]
        # pdekit stores a linear map as c_in × c_out, row-major; torch as [out, in].
        if own.dim() == 2:
            t = t.reshape(own.shape[1], own.shape[0]).t().contiguous()
        state[target] = t.reshape(own.shape)
    missing = set(params) - set(state)
    assert not missing, f"not in the checkpoint: {sorted(missing)}"
    model.load_state_dict(state, strict=True)
    nx, ny = json.loads(meta["normalizer_x"]), json.loads(meta["normalizer_y"])
    xe = (x - np.array(nx["mean"])) / np.array(nx["std"])
    errors = []
    with torch.no_grad():
        for i in range(0, count, 20):
            pred = model(torch.from_numpy(xe[i:i + 20]).float()).double().numpy()
            pred = pred * np.array(ny["std"]) + np.array(ny["mean"])
            t = y[i:i + 20]
            diff = np.sqrt(((pred - t) ** 2).reshape(len(t), -1).sum(1))
            errors.extend(diff / np.sqrt((t ** 2).reshape(len(t), -1).sum(1)))
    return {
        "checkpoint": args.check,
        "data": args.data,
        "rows": [start, start + count],
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_rel_l2": float(np.mean(errors)),
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
    ap.add_argument("--check", help="score this pdekit FactFormer checkpoint with the mirror")
    ap.add_argument("--data", help="the dataset of --check")
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
    if args.check:
        out["check"] = check(args)
    else:
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
