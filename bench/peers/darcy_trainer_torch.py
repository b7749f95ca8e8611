"""neuraloperator's own training loop on the recipe of bench/recipes/darcy16.toml, for a wall-time
and accuracy comparison with `pdekit train` on the same files.

The recipe: neuraloperator's FNO (n_modes = (8, 8), hidden_channels = 32, 4 layers), per-channel
UnitGaussianNormalizers in a DefaultDataProcessor, AdamW (lr 8e-3, weight decay 1e-4),
CosineAnnealingLR over the epochs, H1 training loss, batch 32, shuffled, evaluated every epoch
on the separate test file, with `neuralop.training.Trainer`.

Usage:
    bench/peers/.venv/bin/python bench/peers/darcy_trainer_torch.py \
        --train data/darcy16_train.h5 --test data/darcy16_test.h5 --out bench/results/darcy16_trainer.json

Reports the wall time of `Trainer.train` (training and the per-epoch evaluation), the whole
script's time, and the final test relative L2 and H1 as pdekit computes them (the mean over
samples of ||pred − y|| / ||y||; H1 by pdekit's spectral definition is not recomputed here,
so the H1 reported is neuraloperator's `H1Loss` averaged per sample).
Needs torch, neuraloperator and h5py.
"""
import argparse
import json
import os
import time

START = time.perf_counter()

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from neuralop import H1Loss, LpLoss  # noqa: E402
from neuralop.data.datasets.tensor_dataset import TensorDataset  # noqa: E402
from neuralop.data.transforms.data_processors import DefaultDataProcessor  # noqa: E402
from neuralop.data.transforms.normalizers import UnitGaussianNormalizer  # noqa: E402
from neuralop.models import FNO  # noqa: E402
from neuralop.training import Trainer  # noqa: E402


def read(path, rows):
    with h5py.File(path, "r") as f:
        x = np.asarray(f["inputs/coefficient"][:rows], dtype=np.float32)[:, None]
        y = np.asarray(f["outputs/solution"][:rows], dtype=np.float32)[:, None]
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--train-samples", type=int, default=1000)
    ap.add_argument("--test-samples", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=8e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--n-modes", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y = read(args.train, args.train_samples)
    tx, ty = read(args.test, args.test_samples)
    in_norm = UnitGaussianNormalizer(dim=[0, 2, 3])
    out_norm = UnitGaussianNormalizer(dim=[0, 2, 3])
    in_norm.fit(x)
    out_norm.fit(y)
    processor = DefaultDataProcessor(in_norm, out_norm)
    train_loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=True)
    test_loader = DataLoader(TensorDataset(tx, ty), batch_size=args.batch, shuffle=False)
    model = FNO(n_modes=(args.n_modes, args.n_modes), in_channels=1, out_channels=1,
                hidden_channels=args.width, projection_channel_ratio=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    h1, l2 = H1Loss(d=2), LpLoss(d=2, p=2)
    trainer = Trainer(model=model, n_epochs=args.epochs, device="cpu", data_processor=processor,
                      wandb_log=False, eval_interval=1, use_distributed=False, verbose=False)
    t0 = time.perf_counter()
    trainer.train(train_loader=train_loader, test_loaders={16: test_loader}, optimizer=optimizer,
                  scheduler=scheduler, regularizer=False, training_loss=h1,
                  eval_losses={"h1": h1, "l2": l2})
    train_seconds = time.perf_counter() - t0
    model.eval()
    processor.eval()
    with torch.no_grad():
        pred = processor.out_normalizer.inverse_transform(model(processor.in_normalizer.transform(tx)))
    diff = (pred - ty).reshape(len(ty), -1).norm(dim=1) / ty.reshape(len(ty), -1).norm(dim=1)
    h1_per_sample = float(np.mean([float(h1(pred[i:i + 1], ty[i:i + 1])) for i in range(len(ty))]))
    result = {
        "torch": torch.__version__,
        "threads": args.threads,
        "recipe": vars(args),
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainer_train_seconds": train_seconds,
        "script_seconds": time.perf_counter() - START,
        "test_rel_l2": float(diff.mean()),
        "test_h1_neuralop": h1_per_sample,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
