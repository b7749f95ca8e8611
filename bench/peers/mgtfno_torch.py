"""PyTorch peer for MG-TFNO (and TFNO): neuraloperator's TFNO inside its MultigridPatching2D, the
wrapper neuraloperator's MGPatchingDataProcessor drives, on CPU.

Two modes:
  * step timing (what `pdekit bench train --config ... --peers` runs): one training step
    (patch, forward, stitch, relative L2 loss, backward, Adam) on random data; median time and
    the steps' peak resident memory;
  * training on a pdekit dataset (--data): the same recipe as a pdekit [train] section (per-channel
    unit-Gaussian normalisers fitted on the training split, Adam, cosine schedule, relative L2 loss
    on the stitched field, batch order reshuffled each epoch), reporting the test relative L2 of
    each epoch, the time per epoch and the peak memory.

pdekit's `modes = m` keeps ±m modes on the first axis and m on the last; neuraloperator counts
modes in total, so the same weights are n_modes = (2m, 2m - 1). neuraloperator's TFNO appends
linear grid coordinates; a pdekit config may append periodic ones (two more input channels).

Setup (once, from the repository root):
    python3 -m venv bench/peers/.venv
    bench/peers/.venv/bin/pip install torch neuraloperator h5py
Run:
    bench/peers/.venv/bin/python bench/peers/mgtfno_torch.py --width 32 --modes 16 16 --layers 4 \
        --factorization tucker --rank 0.05 --levels 1 --padding-fraction 0.0625 \
        --grid 128 128 --batch 20 --steps 10 --threads 2
    bench/peers/.venv/bin/python bench/peers/mgtfno_torch.py ... --data data/ns_128.h5 \
        --input inputs/initial_vorticity --output outputs/vorticity --train 1000 --test 100 \
        --epochs 30 --batch 20 --out bench/results/mgtfno-peer.json
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


def relative_l2(pred, target):
    diff = (pred - target).flatten(1).norm(dim=1)
    return (diff / target.flatten(1).norm(dim=1)).mean()


def build(args, in_channels):
    from neuralop.models import TFNO
    from neuralop.training.patching import MultigridPatching2D

    n_modes = tuple(2 * m for m in args.modes[:-1]) + (2 * args.modes[-1] - 1,)
    model = TFNO(
        n_modes=n_modes,
        hidden_channels=args.width,
        in_channels=in_channels * (args.levels + 1),
        out_channels=1,
        n_layers=args.layers,
        factorization=args.factorization,
        rank=args.rank,
    )
    patcher = MultigridPatching2D(
        model,
        levels=args.levels,
        padding_fraction=args.padding_fraction,
        use_distributed=False,
        stitching=True,
    )
    return model, patcher, n_modes


def step_fn(model, patcher, opt):
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        xp, yp = patcher.patch(x, y)
        out = model(xp)
        out, yp = patcher.unpatch(out, yp, evaluation=True)
        loss = relative_l2(out, yp)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def predict(model, patcher, x):
    with torch.no_grad():
        xp, _ = patcher.patch(x, x)
        out = model(xp)
        out, _ = patcher.unpatch(out, x, evaluation=True)
    return out


def quiet(f, *a):
    # neuraloperator's patching prints shapes on every call.
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return f(*a)


def time_steps(args):
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, *args.grid)
    y = torch.rand(args.batch, 1, *args.grid)
    model, patcher, n_modes = quiet(build, args, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = step_fn(model, patcher, opt)
    peak_is_steps = reset_peak()
    before = status_mib("VmRSS:")
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        quiet(step, x, y)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    return {
        "parameters": params,
        "n_modes": list(n_modes),
        "step_seconds_median": statistics.median(times),
        "step_seconds_min": min(times),
        "steps": args.steps,
        "rss_before_steps_mib": before,
        "step_peak_rss_mib": status_mib("VmHWM:") if peak_is_steps else None,
    }


def read_split(args):
    import h5py
    import numpy as np

    with h5py.File(args.data, "r") as f:
        def rows(name, a, b):
            v = np.asarray(f[name][a:b], dtype=np.float32)
            # [n, H, W] or [n, C, H, W]: keep one channel axis.
            return v[:, None] if v.ndim == 3 else v

        n, t = args.train, args.test
        return (
            torch.from_numpy(rows(args.input, 0, n)),
            torch.from_numpy(rows(args.output, 0, n)),
            torch.from_numpy(rows(args.input, n, n + t)),
            torch.from_numpy(rows(args.output, n, n + t)),
        )


def train(args):
    x, y, tx, ty = read_split(args)
    # Per-channel unit-Gaussian normalisers, as pdekit's.
    def stats(v):
        m = v.mean(dim=(0, 2, 3), keepdim=True)
        s = v.std(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-7
        return m, s

    (xm, xs), (ym, ys) = stats(x), stats(y)
    torch.manual_seed(args.seed)
    model, patcher, n_modes = quiet(build, args, x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    history = []
    reset_peak()
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(x.shape[0])
        losses = []
        for start in range(0, x.shape[0], args.batch):
            idx = order[start : start + args.batch]
            xb = (x[idx] - xm) / xs
            opt.zero_grad(set_to_none=True)
            xp, _ = quiet(patcher.patch, xb, y[idx])
            out = model(xp)
            out, _ = quiet(patcher.unpatch, out, y[idx], True)
            loss = relative_l2(out * ys + ym, y[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        model.eval()
        errs = []
        for start in range(0, tx.shape[0], args.batch):
            xb = (tx[start : start + args.batch] - xm) / xs
            pred = quiet(predict, model, patcher, xb) * ys + ym
            yb = ty[start : start + args.batch]
            errs.extend(((pred - yb).flatten(1).norm(dim=1) / yb.flatten(1).norm(dim=1)).tolist())
        rec = {
            "epoch": epoch,
            "train_loss": sum(losses) / len(losses),
            "test_l2": sum(errs) / len(errs),
            "seconds": time.perf_counter() - t0,
            "peak_rss_mib": status_mib("VmHWM:"),
        }
        history.append(rec)
        print(json.dumps(rec), flush=True)
        reset_peak()
    params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    return {
        "parameters": params,
        "n_modes": list(n_modes),
        "final_test_l2": history[-1]["test_l2"],
        "mean_epoch_seconds": statistics.mean(r["seconds"] for r in history),
        "peak_rss_mib": max(r["peak_rss_mib"] or 0 for r in history),
        "history": history,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--modes", type=int, nargs=2, default=[16, 16])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--factorization", default="tucker", choices=["tucker", "cp"])
    ap.add_argument("--rank", type=float, default=0.05)
    ap.add_argument("--levels", type=int, default=1)
    ap.add_argument("--padding-fraction", type=float, default=0.0625)
    ap.add_argument("--grid", type=int, nargs=2, default=[128, 128])
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--data", help="train on this pdekit dataset instead of timing steps")
    ap.add_argument("--input", default="inputs/initial_vorticity")
    ap.add_argument("--output", default="outputs/vorticity")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import neuralop

    out = {
        "torch": torch.__version__,
        "neuraloperator": getattr(neuralop, "__version__", "?"),
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "config": vars(args),
        "models": {},
    }
    name = "neuraloperator MG-TFNO" if args.levels > 0 else "neuraloperator TFNO"
    out["models"][name] = train(args) if args.data else time_steps(args)
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out + ".partial", "w") as f:
            f.write(text)
        os.replace(args.out + ".partial", args.out)
    else:
        print(text)


if __name__ == "__main__":
    main()
