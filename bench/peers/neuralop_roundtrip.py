"""Round trip of FNO checkpoints between pdekit and neuraloperator 2.x, both directions.

Usage:
    bench/peers/.venv/bin/python bench/peers/neuralop_roundtrip.py \
        --checkpoint runs/x/checkpoint.safetensors --data data/darcy.h5 --start 1000 --samples 100

1. pdekit -> neuraloperator: `pdekit export` writes the checkpoint (an FNO or TFNO trained
   with block = "neuraloperator"); `neuralop.models.FNO.from_checkpoint` loads it, and its
   predictions on the rows are compared with `pdekit evaluate --predictions`.
2. neuraloperator -> pdekit: an FNO of the same architecture is built and trained in PyTorch
   (AdamW, --torch-steps steps on the rows before --start), saved with `save_checkpoint` and its
   normalisers with `torch.save(data_processor.state_dict(), ...)`, read back by `pdekit import`,
   and scored by `pdekit evaluate --predictions`; the predictions are compared with PyTorch's.

Prints (and with --out writes) JSON: the largest per-sample relative difference
||pdekit - torch|| / ||torch|| in each direction. Needs torch, neuraloperator and h5py.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
from neuralop.data.transforms.data_processors import DefaultDataProcessor
from neuralop.data.transforms.normalizers import UnitGaussianNormalizer
from neuralop.models import FNO


def run(*cmd):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def read_checkpoint_meta(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    return header.get("__metadata__", {})


def rel_diff(a, b):
    """Per-sample ||a - b|| / ||b||."""
    d = (a - b).reshape(len(a), -1)
    return np.linalg.norm(d, axis=1) / np.linalg.norm(b.reshape(len(b), -1), axis=1)


def read_rows(data, field, start, count):
    with h5py.File(data, "r") as f:
        a = np.asarray(f[field][start:start + count], dtype=np.float32)
    # pdekit datasets store one channel without a channel axis, several on axis 1.
    return a[:, None] if a.ndim == GRID_DIMS + 1 else a


def normalizer(shape):
    return UnitGaussianNormalizer(mean=torch.zeros(shape), std=torch.ones(shape))


def main():
    global GRID_DIMS
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdekit", default="target/release/pdekit")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--start", type=int, required=True, help="first row compared")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--torch-steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", help="keep the files here (default: a temporary directory)")
    ap.add_argument("--out", help="write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = args.work or tempfile.mkdtemp(prefix="neuralop-roundtrip-")
    os.makedirs(work, exist_ok=True)
    meta = read_checkpoint_meta(args.checkpoint)
    spec, data_meta = json.loads(meta["model"]), json.loads(meta["data"])
    GRID_DIMS = len(spec["modes"])
    x = read_rows(args.data, data_meta["input"], args.start, args.samples)
    xt = torch.from_numpy(x)

    # 1. pdekit -> neuraloperator.
    prefix = os.path.join(work, "exported", "model")
    run(args.pdekit, "export", "--checkpoint", args.checkpoint, "--out", prefix)
    pdekit_pred = os.path.join(work, "pdekit_pred.npy")
    run(args.pdekit, "evaluate", "--checkpoint", args.checkpoint, "--data", args.data,
        "--start", args.start, "--samples", args.samples, "--predictions", pdekit_pred,
        "--out", os.path.join(work, "pdekit_eval.json"))
    model = FNO.from_checkpoint(os.path.dirname(prefix), "model")
    model.eval()
    norm_state = torch.load(prefix + "_normalizers.pt")
    processor = DefaultDataProcessor(normalizer(norm_state["in_normalizer.mean"].shape),
                                     normalizer(norm_state["out_normalizer.mean"].shape))
    processor.load_state_dict(norm_state)
    with torch.no_grad():
        torch_pred = processor.out_normalizer.inverse_transform(
            model(processor.in_normalizer.transform(xt))).numpy()
    ours = np.moveaxis(np.load(pdekit_pred), -1, 1)
    export_diff = rel_diff(ours, torch_pred)

    # 2. neuraloperator -> pdekit: a model trained in PyTorch.
    torch.manual_seed(0)
    trained = FNO(**{k: v for k, v in model._init_kwargs.items() if k not in ("_version", "args", "_name")})
    train_rows = min(args.start, 200)
    tx = torch.from_numpy(read_rows(args.data, data_meta["input"], 0, train_rows))
    ty = torch.from_numpy(read_rows(args.data, data_meta["output"], 0, train_rows))
    in_norm = UnitGaussianNormalizer(dim=[0] + list(range(2, 2 + GRID_DIMS)))
    out_norm = UnitGaussianNormalizer(dim=[0] + list(range(2, 2 + GRID_DIMS)))
    in_norm.fit(tx)
    out_norm.fit(ty)
    opt = torch.optim.AdamW(trained.parameters(), lr=1e-3)
    trained.train()
    xe, ye = in_norm.transform(tx), out_norm.transform(ty)
    for step in range(args.torch_steps):
        i = (step * 20) % max(train_rows - 20, 1)
        loss = ((trained(xe[i:i + 20]) - ye[i:i + 20]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained.eval()
    saved = os.path.join(work, "torch_trained")
    trained.save_checkpoint(saved, "trained")
    torch.save(DefaultDataProcessor(in_norm, out_norm).state_dict(),
               os.path.join(saved, "trained_normalizers.pt"))
    imported = os.path.join(work, "imported", "checkpoint.safetensors")
    run(args.pdekit, "import", os.path.join(saved, "trained"), "--normalizers",
        os.path.join(saved, "trained_normalizers.pt"), "--out", imported)
    imported_pred = os.path.join(work, "imported_pred.npy")
    run(args.pdekit, "evaluate", "--checkpoint", imported, "--data", args.data,
        "--start", args.start, "--samples", args.samples, "--predictions", imported_pred,
        "--out", os.path.join(work, "imported_eval.json"))
    with torch.no_grad():
        torch_pred2 = out_norm.inverse_transform(trained(in_norm.transform(xt))).numpy()
    ours2 = np.moveaxis(np.load(imported_pred), -1, 1)
    import_diff = rel_diff(ours2, torch_pred2)
    bias = max(float(p.detach().abs().max()) for n, p in trained.named_parameters()
               if ".convs." in n and n.endswith(".bias"))

    result = {
        "torch": torch.__version__,
        "checkpoint": args.checkpoint,
        "data": args.data,
        "rows": [args.start, args.start + args.samples],
        "export_max_rel_diff": float(export_diff.max()),
        "export_mean_rel_diff": float(export_diff.mean()),
        "import_torch_steps": args.torch_steps,
        "import_largest_spectral_bias": bias,
        "import_max_rel_diff": float(import_diff.max()),
        "import_mean_rel_diff": float(import_diff.mean()),
        "work": work,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
