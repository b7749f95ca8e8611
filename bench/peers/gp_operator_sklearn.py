"""Peer of `pdekit bench gp-operator`: scikit-learn's GaussianProcessRegressor on the features and
targets pdekit hands over, with pdekit's fitted hyper-parameters held fixed (optimizer=None), so
the two posteriors are the same model and only their speed differs.

    python gp_operator_sklearn.py JOB.json OUT.json

JOB.json names .npy files (train features, train targets, test features), the kernel and the
hyper-parameters. The features arrive already divided by their length-scales, so every kernel
runs with length_scale = 1 (that also covers ARD, which sklearn's RationalQuadratic lacks). The
inverse multiquadric (1 + s)^(-1/2) is sklearn's RationalQuadratic with alpha = 1/2, and a linear
part is a DotProduct kernel scaled by `linear_weight`.
Writes the test predictions (target space) to the .npy JOB.json names and timings to OUT.json.
"""

import json
import sys
import time

import numpy as np
import sklearn
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    Matern,
    DotProduct,
    RationalQuadratic,
    WhiteKernel,
)


def kernel_of(name, hyper, linear_weight):
    fixed = "fixed"
    if name == "rbf":
        shape = RBF(1.0, length_scale_bounds=fixed)
    elif name in ("matern12", "matern32", "matern52"):
        nu = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}[name]
        shape = Matern(1.0, length_scale_bounds=fixed, nu=nu)
    elif name == "rational_quadratic":
        shape = RationalQuadratic(
            1.0, alpha=hyper["shape"], length_scale_bounds=fixed, alpha_bounds=fixed
        )
    elif name == "inverse_multiquadric":
        shape = RationalQuadratic(1.0, alpha=0.5, length_scale_bounds=fixed, alpha_bounds=fixed)
    else:
        raise SystemExit(f"unknown kernel {name}")
    kernel = ConstantKernel(hyper["signal_variance"], constant_value_bounds=fixed) * shape + WhiteKernel(
        hyper["noise_variance"], noise_level_bounds=fixed
    )
    if linear_weight > 0:
        kernel = kernel + ConstantKernel(linear_weight, constant_value_bounds=fixed) * DotProduct(
            0.0, sigma_0_bounds=fixed
        )
    return kernel


def main():
    job_path, out_path = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    x = np.load(job["train_features"])
    y = np.load(job["train_targets"])
    xt = np.load(job["test_features"])
    gp = GaussianProcessRegressor(
        kernel=kernel_of(job["kernel"], job["hyper"], job.get("linear_weight", 0.0)), optimizer=None, alpha=0.0, normalize_y=False
    )
    t = time.perf_counter()
    gp.fit(x, y)
    fit_seconds = time.perf_counter() - t
    t = time.perf_counter()
    mean, std = gp.predict(xt, return_std=True)
    predict_seconds = time.perf_counter() - t
    np.save(job["predictions"], np.ascontiguousarray(mean.reshape(xt.shape[0], -1)))
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: p.get(k) for k in ("internal_api", "num_threads", "version")} for p in threadpool_info()]
    except ImportError:
        blas = None
    with open(out_path, "w") as f:
        json.dump(
            {
                "peer": "scikit-learn GaussianProcessRegressor (optimizer=None)",
                "sklearn_version": sklearn.__version__,
                "numpy_version": np.__version__,
                "blas": blas,
                "fit_seconds": fit_seconds,
                "predict_seconds": predict_seconds,
                "train_samples": int(x.shape[0]),
                "test_samples": int(xt.shape[0]),
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
