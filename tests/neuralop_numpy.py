"""neuraloperator 2.x checkpoints read, and its FNO run, with NumPy alone (no torch).

`load_torch_file(path)` reads a file written by `torch.save` (a zip archive of a pickle and raw
storages) into plain Python objects and NumPy arrays; `fno_forward(state, kwargs, x)` is
neuraloperator's `FNO.forward` (grid embedding, lifting, FNO blocks with a spectral bias and no
GELU after the last block's sum, projection) for the options `pdekit export` writes. The spectral
convolution keeps the frequencies −m … m−1 along every axis but the last and 0 … n_last/2 along
the last, as neuraloperator's fft-shifted slices do.

Used by tests/interop.py; also handy for looking inside an exported checkpoint.
"""
import collections
import math
import pickle
import zipfile

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "ComplexFloatStorage": np.complex64,
}


class _Global:
    """A global the pickle names (e.g. torch's gelu): kept by name, never imported."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __repr__(self):
        return f"{self.module}.{self.name}"


def _rebuild_tensor(storage, offset, shape, stride, *_):
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=shape, strides=[s * item for s in stride])
    return np.array(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _DTYPES:
            return name
        return _Global(module, name)

    def persistent_load(self, pid):
        tag, storage_type, key, _location, _numel = pid
        assert tag == "storage", pid
        raw = self.archive.read(f"{self.prefix}data/{key}")
        return np.frombuffer(raw, dtype=np.dtype(_DTYPES[storage_type]).newbyteorder("<"))


def load_torch_file(path):
    with zipfile.ZipFile(path) as archive:
        pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        prefix = pkl[: -len("data.pkl")]
        with archive.open(pkl) as f:
            return _Unpickler(f, archive, prefix).load()


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    """Exact GELU, as torch's default."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(x.dtype))


def _pointwise(x, weight, bias=None):
    """A 1×1 convolution of [b, c_in, grid...] with weight (c_out, c_in, 1)."""
    y = np.einsum("oi,bi...->bo...", weight[:, :, 0], x)
    if bias is not None:
        y = y + bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    return y


def _mlp(state, prefix, x):
    h = _pointwise(x, state[f"{prefix}.fcs.0.weight"], state[f"{prefix}.fcs.0.bias"])
    return _pointwise(gelu(h), state[f"{prefix}.fcs.1.weight"], state[f"{prefix}.fcs.1.bias"])


def spectral_conv(x, weight, bias):
    """x [b, c, grid...], weight complex (c_in, c_out, K_0, ..., K_last), bias (c_out, 1, ...)."""
    axes = tuple(range(2, x.ndim))
    grid = x.shape[2:]
    spectrum = np.fft.rfftn(x.astype(np.float64), axes=axes, norm="forward")
    out = np.zeros((x.shape[0], weight.shape[1]) + spectrum.shape[2:], dtype=np.complex128)
    kept = []
    for a, k in enumerate(weight.shape[2:]):
        if a + 1 == len(grid):
            kept.append(np.arange(k))
        else:
            kept.append(np.arange(-(k // 2), k - k // 2) % grid[a])
    index = np.ix_(*kept)
    picked = spectrum[(slice(None), slice(None)) + index]
    out[(slice(None), slice(None)) + index] = np.einsum("bi...,io...->bo...", picked, weight)
    y = np.fft.irfftn(out, s=grid, axes=axes, norm="forward")
    return y + bias[None]


def spectral_weight(state, prefix):
    """A layer's dense complex weight (in, out, modes...): stored whole, or rebuilt from
    tensorly's Tucker (core, factors) or CP (weights, factors)."""
    if f"{prefix}.tensor" in state:
        return state[f"{prefix}.tensor"]
    factors = []
    while f"{prefix}.factors.factor_{len(factors)}" in state:
        factors.append(state[f"{prefix}.factors.factor_{len(factors)}"])
    if f"{prefix}.core" in state:
        w = state[f"{prefix}.core"]
        for k, f in enumerate(factors):
            # Mode-k product: contract axis k of w with the factor's rank axis.
            w = np.moveaxis(np.tensordot(f, w, axes=([1], [k])), 0, k)
        return w
    weights = state[f"{prefix}.weights"]
    letters = "abcdefgh"[: len(factors)]
    spec = "r," + ",".join(f"{c}r" for c in letters) + "->" + letters
    return np.einsum(spec, weights, *factors)


def fno_forward(state, kwargs, x):
    """neuraloperator's FNO on x [b, c_in, grid...] (float64 throughout)."""
    state = {k: np.asarray(v, dtype=np.complex128 if np.iscomplexobj(v) else np.float64)
             for k, v in state.items() if isinstance(v, np.ndarray)}
    grid = x.shape[2:]
    coords = np.meshgrid(*[np.arange(n) / n for n in grid], indexing="ij")
    emb = [np.broadcast_to(c, (x.shape[0], 1) + grid) for c in coords]
    h = _mlp(state, "lifting", np.concatenate([x.astype(np.float64)] + emb, axis=1))
    layers = kwargs["n_layers"]
    for l in range(layers):
        b = "fno_blocks"
        skip = _pointwise(h, state[f"{b}.fno_skips.{l}.conv.weight"])
        gate = h * state[f"{b}.channel_mlp_skips.{l}.weight"]
        weight = spectral_weight(state, f"{b}.convs.{l}.weight")
        z = spectral_conv(h, weight, state[f"{b}.convs.{l}.bias"]) + skip
        if l < layers - 1:
            z = gelu(z)
        z = _mlp(state, f"{b}.channel_mlp.{l}", z) + gate
        if l < layers - 1:
            z = gelu(z)
        h = z
    return _mlp(state, "projection", h)
