"""PyTorch reference for `pdekit bench train`: times one training step (forward, relative L2
loss, backward, Adam update) of the FNO pdekit builds, on CPU.

Two PyTorch models, both with pdekit's architecture and parameter count:
  * "neuraloperator": neuralop.models.FNO. pdekit's `modes = m` keeps ±m modes on the first axes
    and m on the last (the FNO paper's convention); neuraloperator counts modes in total, so the
    same weights are n_modes = (2m, ..., 2m - 1).
  * "mirror": a plain PyTorch module written to match pdekit layer for layer (no library).

Setup (once, from the repository root):
    python3 -m venv bench/peers/.venv
    bench/peers/.venv/bin/pip install torch neuraloperator
Run:
    bench/peers/.venv/bin/python bench/peers/fno_torch.py --width 32 --modes 12 12 --layers 4 \
        --grid 64 64 --batch 16 --threads 2 --steps 20
Prints one JSON object.
"""

import argparse
import itertools
import json
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SpectralConv(nn.Module):
    def __init__(self, c_in, c_out, modes):
        super().__init__()
        self.modes = modes
        shape = [c_in, c_out] + [2 * m for m in modes[:-1]] + [modes[-1]]
        scale = 1.0 / (c_in * c_out)
        self.weight = nn.Parameter(scale * torch.rand(*shape, dtype=torch.cfloat))

    def forward(self, x):
        d = len(self.modes)
        dims = tuple(range(-d, 0))
        xh = torch.fft.rfftn(x, dim=dims, norm="forward")
        out = torch.zeros(x.shape[0], self.weight.shape[1], *xh.shape[2:], dtype=xh.dtype)
        # One block of kept modes per sign combination of the leading axes (±m), the last axis
        # keeping its first m: 1, 2 or 4 blocks in 1-D, 2-D and 3-D.
        for signs in itertools.product((0, 1), repeat=d - 1):
            src, wsl = [slice(None)] * 2, [slice(None)] * 2
            for negative, m in zip(signs, self.modes[:-1]):
                src.append(slice(-m, None) if negative else slice(0, m))
                wsl.append(slice(m, 2 * m) if negative else slice(0, m))
            src.append(slice(0, self.modes[-1]))
            wsl.append(slice(None))
            src, wsl = tuple(src), tuple(wsl)
            out[src] = torch.einsum("bi...,io...->bo...", xh[src], self.weight[wsl])
        return torch.fft.irfftn(out, s=x.shape[-d:], dim=dims, norm="forward")


class ChannelMLP(nn.Module):
    def __init__(self, c_in, hidden, c_out, d):
        super().__init__()
        conv = nn.Conv1d
        self.fc1 = conv(c_in, hidden, 1)
        self.fc2 = conv(hidden, c_out, 1)

    def forward(self, x):
        shape = x.shape
        x = x.reshape(shape[0], shape[1], -1)
        x = self.fc2(F.gelu(self.fc1(x)))
        return x.reshape(shape[0], -1, *shape[2:])


class Block(nn.Module):
    def __init__(self, width, modes, last):
        super().__init__()
        self.conv = SpectralConv(width, width, modes)
        self.skip = nn.Conv1d(width, width, 1, bias=False)
        self.mlp = ChannelMLP(width, width // 2, width, len(modes))
        self.gate = nn.Parameter(torch.ones(1, width, *([1] * len(modes))))
        self.last = last

    def forward(self, x):
        b, c = x.shape[:2]
        skip = self.skip(x.reshape(b, c, -1)).reshape(x.shape)
        h = F.gelu(self.conv(x) + skip)
        z = self.mlp(h) + self.gate * x
        return z if self.last else F.gelu(z)


class MirrorFNO(nn.Module):
    def __init__(self, c_in, c_out, width, modes, layers):
        super().__init__()
        d = len(modes)
        self.lifting = ChannelMLP(c_in + d, 2 * width, width, d)
        self.blocks = nn.ModuleList([Block(width, modes, i == layers - 1) for i in range(layers)])
        self.projection = ChannelMLP(width, 2 * width, c_out, d)

    def forward(self, x):
        b, grid = x.shape[0], x.shape[2:]
        coords = torch.meshgrid(*[torch.arange(n, dtype=x.dtype) / n for n in grid], indexing="ij")
        x = torch.cat([x] + [c.expand(b, 1, *grid) for c in coords], dim=1)
        x = self.lifting(x)
        for blk in self.blocks:
            x = blk(x)
        return self.projection(x)


def relative_l2(pred, target):
    diff = (pred - target).flatten(1).norm(dim=1)
    return (diff / target.flatten(1).norm(dim=1)).mean()


def time_model(model, x, y, steps, warmup):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times, fb = [], []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = relative_l2(model(x), y)
        loss.backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        if i >= warmup:
            times.append(t2 - t0)
            fb.append(t1 - t0)
    params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    return {
        "parameters": params,
        "step_seconds_median": statistics.median(times),
        "step_seconds_min": min(times),
        "forward_backward_seconds_median": statistics.median(fb),
        "steps": steps,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--modes", type=int, nargs="+", default=[12, 12])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--grid", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, *args.grid)
    y = torch.rand(args.batch, 1, *args.grid)
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "config": vars(args),
        "models": {},
    }
    mirror = MirrorFNO(1, 1, args.width, args.modes, args.layers)
    out["models"]["mirror"] = time_model(mirror, x, y, args.steps, args.warmup)
    try:
        from neuralop.models import FNO

        n_modes = tuple(2 * m for m in args.modes[:-1]) + (2 * args.modes[-1] - 1,)
        model = FNO(
            n_modes=n_modes,
            hidden_channels=args.width,
            in_channels=1,
            out_channels=1,
            n_layers=args.layers,
        )
        out["models"]["neuraloperator"] = time_model(model, x, y, args.steps, args.warmup)
        out["models"]["neuraloperator"]["n_modes"] = list(n_modes)
    except ImportError as e:
        out["models"]["neuraloperator"] = {"error": f"neuraloperator not installed: {e}"}
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out + ".partial", "w") as f:
            f.write(text)
        import os

        os.replace(args.out + ".partial", args.out)
    else:
        print(text)


if __name__ == "__main__":
    main()
