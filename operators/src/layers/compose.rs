//! Compositions and small layers: sequences, channel MLPs, soft gating and the grid-coordinate
//! embedding.

use super::linear::{Gelu, PointwiseLinear};
use super::{Layer, Param};
use crate::tensor::{NnError, Real, Tensor};

/// Names a sub-layer's parameters `prefix.name`.
pub fn prefixed<'a, T>(prefix: &str, params: Vec<Param<'a, T>>) -> Vec<Param<'a, T>> {
    params
        .into_iter()
        .map(|p| Param {
            name: format!("{prefix}.{}", p.name),
            ..p
        })
        .collect()
}

/// `acc += other`, elementwise (in parallel blocks).
pub fn add_into<T: Real>(acc: &mut Tensor<T>, other: &Tensor<T>) {
    use rayon::prelude::*;
    debug_assert_eq!(acc.shape, other.shape);
    acc.data
        .par_chunks_mut(1 << 15)
        .zip(other.data.par_chunks(1 << 15))
        .for_each(|(a, b)| {
            for (x, y) in a.iter_mut().zip(b) {
                *x = *x + *y;
            }
        });
}

/// Layers applied one after another.
pub struct Sequential<T: Real> {
    pub layers: Vec<(String, Box<dyn Layer<T>>)>,
}

impl<T: Real> Layer<T> for Sequential<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut h: Option<Tensor<T>> = None;
        for (_, layer) in &mut self.layers {
            h = Some(layer.forward(h.as_ref().unwrap_or(x))?);
        }
        Ok(h.unwrap_or_else(|| x.clone()))
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut g: Option<Tensor<T>> = None;
        for (_, layer) in self.layers.iter_mut().rev() {
            g = Some(layer.backward(g.as_ref().unwrap_or(dy))?);
        }
        Ok(g.unwrap_or_else(|| dy.clone()))
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        self.layers
            .iter_mut()
            .flat_map(|(name, layer)| prefixed(name, layer.parameters()))
            .collect()
    }
}

/// Two pointwise linear layers with a GELU between.
pub fn channel_mlp<T: Real>(c_in: usize, hidden: usize, c_out: usize, seed: u64) -> Sequential<T> {
    Sequential {
        layers: vec![
            (
                "fc1".into(),
                Box::new(PointwiseLinear::new(c_in, hidden, true, seed)),
            ),
            ("act".into(), Box::new(Gelu::new())),
            (
                "fc2".into(),
                Box::new(PointwiseLinear::new(hidden, c_out, true, seed + 1)),
            ),
        ],
    }
}

/// `y = x ⊙ w` with one learned weight per channel (initially 1).
pub struct SoftGating<T> {
    pub weight: Vec<T>,
    weight_grad: Vec<T>,
    input: Option<Tensor<T>>,
}

impl<T: Real> SoftGating<T> {
    pub fn new(channels: usize) -> Self {
        Self {
            weight: vec![T::one(); channels],
            weight_grad: vec![T::zero(); channels],
            input: None,
        }
    }
}

impl<T: Real> Layer<T> for SoftGating<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let c = self.weight.len();
        if x.channels() != c {
            return Err(NnError::Shape {
                layer: "soft gating",
                expected: format!("{c} channels"),
                got: format!("shape {:?}", x.shape),
            });
        }
        let mut y = x.clone();
        for row in y.data.chunks_mut(c) {
            for (v, w) in row.iter_mut().zip(&self.weight) {
                *v = *v * *w;
            }
        }
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let x = self.input.as_ref().ok_or(NnError::NoForward {
            layer: "soft gating",
        })?;
        let c = self.weight.len();
        let mut dx = dy.clone();
        for (row, xrow) in dx.data.chunks_mut(c).zip(x.data.chunks(c)) {
            for k in 0..c {
                self.weight_grad[k] = self.weight_grad[k] + row[k] * xrow[k];
                row[k] = row[k] * self.weight[k];
            }
        }
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        vec![Param {
            name: "weight".into(),
            value: &mut self.weight,
            grad: &mut self.weight_grad,
        }]
    }
}

/// Appends the grid coordinates in [0, 1] (one channel per axis), as neuraloperator's
/// `GridEmbeddingND`.
#[derive(Debug, Clone, Default)]
pub struct GridEmbedding {
    channels: usize,
}

impl<T: Real> Layer<T> for GridEmbedding {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let grid = x.grid().to_vec();
        let (c, d) = (x.channels(), grid.len());
        self.channels = c;
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("a channel axis") = c + d;
        let mut y = Tensor::zeros(&shape);
        let points: usize = grid.iter().product();
        for (p, (src, dst)) in x.data.chunks(c).zip(y.data.chunks_mut(c + d)).enumerate() {
            dst[..c].copy_from_slice(src);
            let mut rest = p % points;
            for a in (0..d).rev() {
                let i = rest % grid[a];
                rest /= grid[a];
                // The coordinate of point i on a grid of n points over [0, 1), as linspace(0, 1,
                // n + 1)[:-1] in neuraloperator.
                dst[c + a] = T::lit(i as f64 / grid[a] as f64);
            }
        }
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let c = self.channels;
        let d = dy.shape.len() - 2;
        let mut shape = dy.shape.clone();
        *shape.last_mut().expect("a channel axis") = c;
        let data = dy
            .data
            .chunks(c + d)
            .flat_map(|row| row[..c].iter().copied())
            .collect();
        Tensor::from_vec(&shape, data)
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
    fn soft_gating_and_grid_embedding_gradients_match_finite_differences() {
        let mut gate = SoftGating::<f64>::new(3);
        gate.weight = vec![0.5, -1.0, 2.0];
        assert!(check(&mut gate, &random(&[2, 4, 3], 1)) < 1e-7);
        let mut emb = GridEmbedding::default();
        assert!(check(&mut emb, &random(&[2, 3, 4, 2], 2)) < 1e-7);
    }
}
