//! Normalisations: [`LayerNorm`] (over each point's channels, with a learned scale and shift)
//! and [`InstanceNorm`] (over each sample's grid points, per channel, without parameters), as
//! PyTorch's `nn.LayerNorm` and `nn.InstanceNorm{1,2,3}d` with their defaults (ε = 1e-5, biased
//! variance).

use super::{Layer, Param};
use crate::tensor::{NnError, Real, Tensor};
use rayon::prelude::*;

/// The ε added to the variance (PyTorch's default).
const EPS: f64 = 1e-5;

/// Rows per parallel task.
const CHUNK_ROWS: usize = 1024;

/// `y = (x − μ)/σ · γ + β` over the channels of each point, `σ = √(var + ε)`.
pub struct LayerNorm<T> {
    pub channels: usize,
    pub gamma: Vec<T>,
    pub beta: Vec<T>,
    gamma_grad: Vec<T>,
    beta_grad: Vec<T>,
    /// The normalised input `x̂` and `1/σ` per point, of the last forward pass.
    saved: Option<(Tensor<T>, Vec<T>)>,
}

impl<T: Real> LayerNorm<T> {
    /// γ = 1 and β = 0, as PyTorch initialises them.
    pub fn new(channels: usize) -> Self {
        Self {
            channels,
            gamma: vec![T::one(); channels],
            beta: vec![T::zero(); channels],
            gamma_grad: vec![T::zero(); channels],
            beta_grad: vec![T::zero(); channels],
            saved: None,
        }
    }

    fn check(&self, x: &Tensor<T>) -> Result<(), NnError> {
        if x.channels() != self.channels || x.shape.len() < 2 {
            return Err(NnError::Shape {
                layer: "layer norm",
                expected: format!("{} channels", self.channels),
                got: format!("shape {:?}", x.shape),
            });
        }
        Ok(())
    }
}

impl<T: Real> Layer<T> for LayerNorm<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.check(x)?;
        let c = self.channels;
        let mut xhat = x.clone();
        let mut inv = vec![T::zero(); x.points()];
        let mut y = Tensor::zeros(&x.shape);
        let (gamma, beta) = (&self.gamma, &self.beta);
        let n = T::lit(c as f64);
        xhat.data
            .par_chunks_mut(CHUNK_ROWS * c)
            .zip(inv.par_chunks_mut(CHUNK_ROWS))
            .zip(y.data.par_chunks_mut(CHUNK_ROWS * c))
            .for_each(|((xs, invs), ys)| {
                for ((row, s), out) in xs.chunks_mut(c).zip(invs).zip(ys.chunks_mut(c)) {
                    let mean = row.iter().copied().sum::<T>() / n;
                    let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<T>() / n;
                    *s = T::one() / (var + T::lit(EPS)).sqrt();
                    for (((v, o), g), b) in row.iter_mut().zip(out).zip(gamma).zip(beta) {
                        *v = (*v - mean) * *s;
                        *o = *v * *g + *b;
                    }
                }
            });
        self.saved = Some((xhat, inv));
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let (xhat, inv) = self.saved.as_ref().ok_or(NnError::NoForward {
            layer: "layer norm",
        })?;
        if dy.shape != xhat.shape {
            return Err(NnError::Shape {
                layer: "layer norm",
                expected: format!("output gradient of shape {:?}", xhat.shape),
                got: format!("{:?}", dy.shape),
            });
        }
        let c = self.channels;
        let n = T::lit(c as f64);
        let gamma = &self.gamma;
        let mut dx = Tensor::zeros(&dy.shape);
        let partial: Vec<(Vec<T>, Vec<T>)> = dx
            .data
            .par_chunks_mut(CHUNK_ROWS * c)
            .zip(dy.data.par_chunks(CHUNK_ROWS * c))
            .zip(xhat.data.par_chunks(CHUNK_ROWS * c))
            .zip(inv.par_chunks(CHUNK_ROWS))
            .map(|(((dxs, dys), xs), invs)| {
                let (mut dg, mut db) = (vec![T::zero(); c], vec![T::zero(); c]);
                for (((dxr, dyr), xr), &s) in dxs
                    .chunks_mut(c)
                    .zip(dys.chunks(c))
                    .zip(xs.chunks(c))
                    .zip(invs)
                {
                    // With d = dy·γ: dx = (d − mean(d) − x̂·mean(d·x̂)) / σ.
                    let (mut md, mut mdx) = (T::zero(), T::zero());
                    for k in 0..c {
                        let d = dyr[k] * gamma[k];
                        md = md + d;
                        mdx = mdx + d * xr[k];
                        dg[k] = dg[k] + dyr[k] * xr[k];
                        db[k] = db[k] + dyr[k];
                    }
                    let (md, mdx) = (md / n, mdx / n);
                    for k in 0..c {
                        dxr[k] = (dyr[k] * gamma[k] - md - xr[k] * mdx) * s;
                    }
                }
                (dg, db)
            })
            .collect();
        for (dg, db) in partial {
            for (g, v) in self.gamma_grad.iter_mut().zip(dg) {
                *g = *g + v;
            }
            for (g, v) in self.beta_grad.iter_mut().zip(db) {
                *g = *g + v;
            }
        }
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        vec![
            Param {
                name: "weight".into(),
                value: &mut self.gamma,
                grad: &mut self.gamma_grad,
            },
            Param {
                name: "bias".into(),
                value: &mut self.beta,
                grad: &mut self.beta_grad,
            },
        ]
    }
}

/// `y = (x − μ)/σ` per sample and channel over the sample's grid points, `σ = √(var + ε)`: a
/// field's level and amplitude are taken out, whatever the grid's size.
#[derive(Default)]
pub struct InstanceNorm<T> {
    /// The output and `1/σ` per (sample, channel) of the last forward pass.
    saved: Option<(Tensor<T>, Vec<T>)>,
}

impl<T: Real> InstanceNorm<T> {
    pub fn new() -> Self {
        Self { saved: None }
    }

    /// The output of the last forward pass (kept for the backward pass), so a caller that needs
    /// it too does not keep a second copy.
    pub fn output(&self) -> Option<&Tensor<T>> {
        self.saved.as_ref().map(|(y, _)| y)
    }
}

/// Per (sample, channel) sums of `f(value)` over the points of each sample: `[b·c]`.
fn per_channel_sums<T: Real>(
    data: &[T],
    points: usize,
    c: usize,
    f: impl Fn(T) -> T + Sync,
) -> Vec<T> {
    data.par_chunks(points * c)
        .flat_map_iter(|sample| {
            let mut s = vec![T::zero(); c];
            for row in sample.chunks(c) {
                for (acc, &v) in s.iter_mut().zip(row) {
                    *acc = *acc + f(v);
                }
            }
            s
        })
        .collect()
}

impl<T: Real> Layer<T> for InstanceNorm<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        if x.shape.len() < 3 {
            return Err(NnError::Shape {
                layer: "instance norm",
                expected: "[batch, grid axes…, channels]".into(),
                got: format!("{:?}", x.shape),
            });
        }
        let c = x.channels();
        let points = x.grid().iter().product::<usize>();
        let n = T::lit(points as f64);
        let mean: Vec<T> = per_channel_sums(&x.data, points, c, |v| v)
            .into_iter()
            .map(|s| s / n)
            .collect();
        let mut y = x.clone();
        y.data
            .par_chunks_mut(points * c)
            .zip(mean.par_chunks(c))
            .for_each(|(sample, m)| {
                for row in sample.chunks_mut(c) {
                    for (v, &m) in row.iter_mut().zip(m) {
                        *v = *v - m;
                    }
                }
            });
        let inv: Vec<T> = per_channel_sums(&y.data, points, c, |v| v * v)
            .into_iter()
            .map(|s| T::one() / (s / n + T::lit(EPS)).sqrt())
            .collect();
        y.data
            .par_chunks_mut(points * c)
            .zip(inv.par_chunks(c))
            .for_each(|(sample, s)| {
                for row in sample.chunks_mut(c) {
                    for (v, &s) in row.iter_mut().zip(s) {
                        *v = *v * s;
                    }
                }
            });
        self.saved = Some((y.clone(), inv));
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let (y, inv) = self.saved.as_ref().ok_or(NnError::NoForward {
            layer: "instance norm",
        })?;
        if dy.shape != y.shape {
            return Err(NnError::Shape {
                layer: "instance norm",
                expected: format!("output gradient of shape {:?}", y.shape),
                got: format!("{:?}", dy.shape),
            });
        }
        let c = y.channels();
        let points = y.grid().iter().product::<usize>();
        let n = T::lit(points as f64);
        // dx = (dy − mean(dy) − y·mean(dy·y)) / σ, the means over each sample's points.
        let md: Vec<T> = per_channel_sums(&dy.data, points, c, |v| v);
        let mut prod = dy.clone();
        prod.data
            .par_chunks_mut(1 << 15)
            .zip(y.data.par_chunks(1 << 15))
            .for_each(|(p, y)| p.iter_mut().zip(y).for_each(|(p, &y)| *p = *p * y));
        let mdy: Vec<T> = per_channel_sums(&prod.data, points, c, |v| v);
        let mut dx = prod;
        dx.data
            .par_chunks_mut(points * c)
            .zip(dy.data.par_chunks(points * c))
            .zip(y.data.par_chunks(points * c))
            .enumerate()
            .for_each(|(b, ((dxs, dys), ys))| {
                let at = b * c;
                for ((dxr, dyr), yr) in dxs.chunks_mut(c).zip(dys.chunks(c)).zip(ys.chunks(c)) {
                    for k in 0..c {
                        dxr[k] = (dyr[k] - md[at + k] / n - yr[k] * mdy[at + k] / n) * inv[at + k];
                    }
                }
            });
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check, random};
    use super::*;

    #[test]
    fn layer_norm_gradients_match_finite_differences_and_rows_are_standardised() {
        let mut norm = LayerNorm::<f64>::new(5);
        // A scale and shift away from the identity, so their gradients are exercised.
        for (k, p) in norm.parameters().into_iter().enumerate() {
            for (i, v) in p.value.iter_mut().enumerate() {
                *v = 0.5 + 0.3 * (i + k) as f64;
            }
        }
        let worst = check(&mut norm, &random(&[2, 3, 4, 5], 1));
        assert!(worst < 1e-6, "{worst:e}");
        let mut plain = LayerNorm::<f64>::new(4);
        let y = plain.forward(&random(&[3, 7, 4], 2)).unwrap();
        for row in y.data.chunks(4) {
            let mean = row.iter().sum::<f64>() / 4.0;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
            assert!(
                mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-3,
                "{mean} {var}"
            );
        }
    }

    #[test]
    fn instance_norm_gradients_match_finite_differences_and_channels_are_standardised() {
        let mut norm = InstanceNorm::<f64>::new();
        let worst = check(&mut norm, &random(&[2, 3, 4, 3], 3));
        assert!(worst < 1e-6, "{worst:e}");
        let x = random(&[2, 5, 6, 3], 4);
        let y = norm.forward(&x).unwrap();
        for b in 0..2 {
            for k in 0..3 {
                let vals: Vec<f64> = (0..30).map(|p| y.data[(b * 30 + p) * 3 + k]).collect();
                let mean = vals.iter().sum::<f64>() / 30.0;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 30.0;
                assert!(
                    mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-3,
                    "{mean} {var}"
                );
            }
        }
    }

    #[test]
    fn norms_refuse_wrong_shapes_and_backward_before_forward() {
        let mut norm = LayerNorm::<f32>::new(3);
        let err = norm.forward(&Tensor::zeros(&[1, 4, 2])).unwrap_err();
        assert!(err.to_string().contains("expected 3 channels"), "{err}");
        let err = norm.backward(&Tensor::zeros(&[1, 4, 3])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer norm: backward called before forward"
        );
        let mut inst = InstanceNorm::<f32>::new();
        assert!(inst.forward(&Tensor::zeros(&[4, 3])).is_err());
        assert!(inst.backward(&Tensor::zeros(&[1, 4, 3])).is_err());
    }
}
