"""PyTorch + neuraloperator reference for pdekit's zero-shot super-resolution measurement.

Trains neuralop.models.FNO on every k-th grid point of a pdekit dataset (the FNO paper's
protocol: train on a subsample of finer solutions), then scores the trained model on a test file
both at the training resolution (the same subsample) and at the file's full resolution. The ratio
of the two errors is what the issue's super-resolution target bounds (within 2x).

The model and recipe mirror `pdekit train` with a `[train.fno]` table: width 32, modes 12 (pdekit
counts +-m modes on the first axes, neuraloperator counts them in total, so n_modes = (2m, 2m-1)),
4 layers, domain padding, one mean and standard deviation per channel for inputs and outputs,
Adam, cosine schedule per epoch, relative L2 loss on the decoded output, batch 20.

Setup (once, from the repository root):
    python3 -m venv bench/peers/.venv
    bench/peers/.venv/bin/pip install torch neuraloperator h5py
Run:
    bench/peers/.venv/bin/python bench/peers/fno_superres_torch.py \
        --train data/sr_darcy65_train.h5 --test data/sr_darcy65_test.h5 --subsample 2 \
        --epochs 50 --out bench/results/superres_torch.json
    # Navier-Stokes (periodic, no padding), the test split of the training file:
    bench/peers/.venv/bin/python bench/peers/fno_superres_torch.py \
        --train data/ns_ffno_64.h5 --test data/ns_ffno_64.h5 --input initial_vorticity \
        --output vorticity --train-samples 1000 --test-samples 200 --test-start 1000 --padding 0
Prints (or writes) one JSON object.
"""

import argparse
import json
import math
import os
import platform
import time

import h5py
import torch


def read_field(path, group, name, rows):
    """[rows, channels, H, W]: a [N, H, W] field has one channel, a [N, T, H, W] field (snapshots)
    one channel per snapshot, as pdekit reads them."""
    with h5py.File(path, "r") as f:
        names = list(f[group].keys())
        if name is None:
            if len(names) != 1:
                raise SystemExit(f"{path}: /{group} holds {names}; name one with --input/--output")
            name = names[0]
        if name not in names:
            raise SystemExit(f"{path}: no /{group}/{name} (found {names})")
        data = f[group][name]
        if rows > data.shape[0]:
            raise SystemExit(f"{path}: /{group}/{name} holds {data.shape[0]} rows, need {rows}")
        t = torch.from_numpy(data[:rows].astype("float32"))
        if t.dim() == 3:
            return t.unsqueeze(1)
        if t.dim() == 4:
            return t
        raise SystemExit(f"{path}: /{group}/{name} has shape {tuple(data.shape)}; expected 2-D fields")


def channel_stats(t):
    """One mean and standard deviation per channel, as pdekit's normaliser."""
    return t.mean(dim=(0, 2, 3), keepdim=True), t.std(dim=(0, 2, 3), keepdim=True, unbiased=False)


def relative_l2(pred, target):
    diff = (pred - target).flatten(1).norm(dim=1)
    return diff / target.flatten(1).norm(dim=1)


def evaluate(model, x, y, norms, batch):
    (xm, xs), (ym, ys) = norms
    model.eval()
    errs = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            pred = model((x[i : i + batch] - xm) / xs) * ys + ym
            errs.append(relative_l2(pred, y[i : i + batch]))
    model.train()
    return torch.cat(errs).mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True, help="pdekit dataset: train rows, then test rows")
    ap.add_argument("--test", required=True, help="pdekit dataset scored at two resolutions")
    ap.add_argument("--input", help="field under /inputs (default: the only one)")
    ap.add_argument("--output", help="field under /outputs (default: the only one)")
    ap.add_argument("--train-samples", type=int, default=1000)
    ap.add_argument("--test-samples", type=int, default=100)
    ap.add_argument("--test-start", type=int, default=0, help="first row scored in --test")
    ap.add_argument("--subsample", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--modes", type=int, default=12)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--padding", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the JSON here (default: stdout)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from neuralop.models import FNO

    k = args.subsample
    n_all = args.train_samples + args.test_samples
    x_all = read_field(args.train, "inputs", args.input, n_all)[..., ::k, ::k]
    y_all = read_field(args.train, "outputs", args.output, n_all)[..., ::k, ::k]
    x, y = x_all[: args.train_samples], y_all[: args.train_samples]
    tx, ty = x_all[args.train_samples :], y_all[args.train_samples :]
    # The test file's rows [test_start, test_start + test_samples) are scored at both resolutions.
    end = args.test_start + args.test_samples
    fx = read_field(args.test, "inputs", args.input, end)[args.test_start :]
    fy = read_field(args.test, "outputs", args.output, end)[args.test_start :]
    norms = (channel_stats(x), channel_stats(y))
    (xm, xs), (ym, ys) = norms

    m = args.modes
    model = FNO(
        n_modes=(2 * m, 2 * m - 1),
        hidden_channels=args.width,
        in_channels=x.shape[1],
        out_channels=y.shape[1],
        n_layers=args.layers,
        domain_padding=args.padding if args.padding > 0 else None,
    )
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    history = []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(x.shape[0])
        total = 0.0
        for i in range(0, x.shape[0], args.batch):
            idx = perm[i : i + args.batch]
            opt.zero_grad(set_to_none=True)
            pred = model((x[idx] - xm) / xs) * ys + ym
            loss = relative_l2(pred, y[idx]).mean()
            if not math.isfinite(loss.item()):
                raise SystemExit(f"epoch {epoch}: the training loss is {loss.item()}")
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        sched.step()
        test = evaluate(model, tx, ty, norms, args.batch)
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / x.shape[0],
                "test_l2": test,
                "seconds": time.perf_counter() - t0,
            }
        )
        print(f"epoch {epoch}: train {total / x.shape[0]:.4e} test {test:.4e}", flush=True)
    coarse = evaluate(model, fx[..., ::k, ::k], fy[..., ::k, ::k], norms, args.batch)
    fine = evaluate(model, fx, fy, norms, args.batch)
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "config": vars(args),
        "train_grid": list(x.shape[2:]),
        "fine_grid": list(fx.shape[2:]),
        "parameters": sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters()),
        "seconds": time.perf_counter() - start,
        "test_l2_train_resolution": coarse,
        "test_l2_full_resolution": fine,
        "ratio": fine / coarse,
        "history": history,
    }
    text = json.dumps(out, indent=2)
    if args.out:
        with open(args.out + ".partial", "w") as f:
            f.write(text)
        os.replace(args.out + ".partial", args.out)
    else:
        print(text)


if __name__ == "__main__":
    main()
