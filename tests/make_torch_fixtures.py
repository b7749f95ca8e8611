"""Writes tests/fixtures/neuralop_fno/: a small FNO saved by neuraloperator itself, for the Rust
tests of `pdekit import` (tests/neuralop.rs). Needs torch and neuraloperator 2.x.

  tiny_state_dict.pt, tiny_metadata.pkl: FNO(n_modes=(4, 6), in 1, out 2, hidden 6, 2 layers)
      from model.save_checkpoint(DIR, "tiny"), with every parameter (the spectral biases too)
      drawn at random so that none is left at its initial value;
  tiny_io.pt: torch.save({"x": x, "y": model(x)}), x of shape [2, 1, 8, 10] (float32), the
      model's output in eval mode.

Run: bench/peers/.venv/bin/python tests/make_torch_fixtures.py
"""
import os

import torch
from neuralop.models import FNO

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "neuralop_fno")
os.makedirs(out, exist_ok=True)
torch.manual_seed(2026)
model = FNO(n_modes=(4, 6), in_channels=1, out_channels=2, hidden_channels=6, n_layers=2)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(0.3 * torch.randn_like(p))
model.eval()
model.save_checkpoint(out, "tiny")
x = torch.randn(2, 1, 8, 10)
with torch.no_grad():
    y = model(x)
torch.save({"x": x, "y": y}, os.path.join(out, "tiny_io.pt"))
print(f"wrote {out}: {sum(p.numel() for p in model.parameters())} parameters, y of shape {tuple(y.shape)}")
