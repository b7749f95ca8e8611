//! Unit-Gaussian normalisers, one mean and standard deviation per channel (so they apply at any
//! resolution), fitted on the training split and saved with the checkpoint.

use crate::tensor::{Real, Tensor};

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct UnitGaussian {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// Added to the standard deviation so constant channels stay finite (neuraloperator's 1e-7 is
/// below f32 resolution for O(1) data; this matches it in spirit).
const EPS: f64 = 1e-7;

impl UnitGaussian {
    pub fn fit<T: Real>(x: &Tensor<T>) -> Self {
        let c = x.channels();
        let n = x.points().max(1) as f64;
        let mut mean = vec![0.0; c];
        for row in x.data.chunks(c) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v.to_f64().unwrap_or(f64::NAN);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; c];
        for row in x.data.chunks(c) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v.to_f64().unwrap_or(f64::NAN) - m).powi(2);
            }
        }
        let std = var.iter().map(|s| (s / n).sqrt() + EPS).collect();
        Self { mean, std }
    }

    pub fn encode<T: Real>(&self, x: &Tensor<T>) -> Tensor<T> {
        self.map(x, |v, m, s| (v - m) / s)
    }

    pub fn decode<T: Real>(&self, x: &Tensor<T>) -> Tensor<T> {
        self.map(x, |v, m, s| v * s + m)
    }

    /// The gradient through [`Self::decode`]: `dy · std`.
    pub fn decode_backward<T: Real>(&self, dy: &Tensor<T>) -> Tensor<T> {
        self.map(dy, |v, _, s| v * s)
    }

    fn map<T: Real>(&self, x: &Tensor<T>, f: impl Fn(T, T, T) -> T) -> Tensor<T> {
        let c = self.mean.len();
        let (m, s): (Vec<T>, Vec<T>) = self
            .mean
            .iter()
            .zip(&self.std)
            .map(|(&m, &s)| (T::lit(m), T::lit(s)))
            .unzip();
        let mut out = x.clone();
        for row in out.data.chunks_mut(c) {
            for k in 0..c {
                row[k] = f(row[k], m[k], s[k]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_training_data_has_zero_mean_and_unit_variance_and_decodes_back() {
        let x = crate::layers::gradcheck::random(&[4, 5, 2], 3).data;
        let x = Tensor::from_vec(&[4, 5, 2], x.iter().map(|v| 3.0 * v + 7.0).collect()).unwrap();
        let norm = UnitGaussian::fit(&x);
        let e = norm.encode(&x);
        let again = UnitGaussian::fit(&e);
        for k in 0..2 {
            assert!(again.mean[k].abs() < 1e-12 && (again.std[k] - 1.0).abs() < 1e-6);
        }
        let back = norm.decode(&e);
        for (a, b) in back.data.iter().zip(&x.data) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
