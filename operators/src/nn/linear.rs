//! Pointwise layers: a linear map of the channels at every grid point (one matrix product over
//! all points of the batch), and GELU.

use super::{Layer, NnError, Param, Real, Tensor};
use rand::{Rng, SeedableRng};

/// `y[p, :] = x[p, :]·W + b` at every point p; `W` is `c_in × c_out`, row-major.
#[derive(Debug, Clone)]
pub struct PointwiseLinear<T> {
    pub c_in: usize,
    pub c_out: usize,
    pub weight: Vec<T>,
    pub bias: Vec<T>,
    weight_grad: Vec<T>,
    bias_grad: Vec<T>,
    input: Option<Tensor<T>>,
}

impl<T: Real> PointwiseLinear<T> {
    /// Weights uniform in `±1/√c_in` (PyTorch's default for linear layers), from `seed`.
    pub fn new(c_in: usize, c_out: usize, bias: bool, seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (c_in as f64).sqrt();
        let mut draw = |n: usize| -> Vec<T> {
            (0..n)
                .map(|_| T::lit(rng.gen_range(-bound..bound)))
                .collect()
        };
        let weight = draw(c_in * c_out);
        let bias = if bias { draw(c_out) } else { Vec::new() };
        Self {
            c_in,
            c_out,
            weight_grad: vec![T::zero(); weight.len()],
            bias_grad: vec![T::zero(); bias.len()],
            weight,
            bias,
            input: None,
        }
    }

    fn check(&self, x: &Tensor<T>, want: usize, what: &str) -> Result<(), NnError> {
        if x.channels() != want {
            return Err(NnError::Shape {
                layer: "pointwise linear",
                expected: format!("{want} {what} channels"),
                got: format!("shape {:?}", x.shape),
            });
        }
        Ok(())
    }
}

impl<T: Real> Layer<T> for PointwiseLinear<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.check(x, self.c_in, "input")?;
        let p = x.points();
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("a channel axis") = self.c_out;
        let mut y = Tensor::zeros(&shape);
        if !self.bias.is_empty() {
            for row in y.data.chunks_mut(self.c_out) {
                row.copy_from_slice(&self.bias);
            }
        }
        let (ci, co) = (self.c_in as isize, self.c_out as isize);
        let beta = if self.bias.is_empty() {
            T::zero()
        } else {
            T::one()
        };
        T::gemm(
            p,
            self.c_in,
            self.c_out,
            T::one(),
            &x.data,
            (ci, 1),
            &self.weight,
            (co, 1),
            beta,
            &mut y.data,
            (co, 1),
        );
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.check(dy, self.c_out, "output-gradient")?;
        let x = self.input.as_ref().ok_or(NnError::NoForward {
            layer: "pointwise linear",
        })?;
        let p = x.points();
        let (ci, co) = (self.c_in as isize, self.c_out as isize);
        // dW += xᵀ·dy (xᵀ read through strides).
        T::gemm(
            self.c_in,
            p,
            self.c_out,
            T::one(),
            &x.data,
            (1, ci),
            &dy.data,
            (co, 1),
            T::one(),
            &mut self.weight_grad,
            (co, 1),
        );
        if !self.bias.is_empty() {
            for row in dy.data.chunks(self.c_out) {
                for (g, v) in self.bias_grad.iter_mut().zip(row) {
                    *g = *g + *v;
                }
            }
        }
        // dx = dy·Wᵀ.
        let mut dx = Tensor::zeros(&x.shape);
        T::gemm(
            p,
            self.c_out,
            self.c_in,
            T::one(),
            &dy.data,
            (co, 1),
            &self.weight,
            (1, co),
            T::zero(),
            &mut dx.data,
            (ci, 1),
        );
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = vec![Param {
            name: "weight".into(),
            value: &mut self.weight,
            grad: &mut self.weight_grad,
        }];
        if !self.bias.is_empty() {
            out.push(Param {
                name: "bias".into(),
                value: &mut self.bias,
                grad: &mut self.bias_grad,
            });
        }
        out
    }
}

/// `GELU(x) = x·Φ(x)` with the exact normal CDF (PyTorch's default).
#[derive(Debug, Clone, Default)]
pub struct Gelu<T> {
    input: Option<Tensor<T>>,
}

impl<T: Real> Gelu<T> {
    pub fn new() -> Self {
        Self { input: None }
    }
}

fn phi_cdf<T: Real>(x: T) -> T {
    T::lit(0.5) * (T::one() + (x * T::lit(std::f64::consts::FRAC_1_SQRT_2)).erf())
}

impl<T: Real> Layer<T> for Gelu<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let y = Tensor {
            shape: x.shape.clone(),
            data: x.data.iter().map(|&v| v * phi_cdf(v)).collect(),
        };
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let x = self
            .input
            .as_ref()
            .ok_or(NnError::NoForward { layer: "gelu" })?;
        if dy.shape != x.shape {
            return Err(NnError::Shape {
                layer: "gelu",
                expected: format!("output gradient of shape {:?}", x.shape),
                got: format!("{:?}", dy.shape),
            });
        }
        let density = T::lit(1.0 / (2.0 * std::f64::consts::PI).sqrt());
        Ok(Tensor {
            shape: x.shape.clone(),
            data: x
                .data
                .iter()
                .zip(&dy.data)
                .map(|(&v, &g)| {
                    let pdf = density * (-(v * v) * T::lit(0.5)).exp();
                    g * (phi_cdf(v) + v * pdf)
                })
                .collect(),
        })
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
    fn pointwise_linear_gradients_match_finite_differences() {
        for bias in [true, false] {
            let mut layer = PointwiseLinear::<f64>::new(3, 4, bias, 1);
            let worst = check(&mut layer, &random(&[2, 5, 3], 2));
            assert!(worst < 1e-7, "bias {bias}: {worst:e}");
        }
    }

    #[test]
    fn gelu_gradients_match_finite_differences_and_values_match_the_definition() {
        let mut layer = Gelu::<f64>::new();
        let worst = check(&mut layer, &random(&[2, 4, 3], 3));
        assert!(worst < 1e-7, "{worst:e}");
        // GELU(1) = Φ(1) = 0.841344746…; GELU(−1) = −(1 − Φ(1)).
        let y = layer
            .forward(&Tensor::from_vec(&[1, 2, 1], vec![1.0, -1.0]).unwrap())
            .unwrap();
        assert!((y.data[0] - 0.8413447460685429).abs() < 1e-12);
        assert!((y.data[1] + 0.15865525393145707).abs() < 1e-12);
    }

    #[test]
    fn wrong_channel_counts_and_missing_forward_are_clear_errors() {
        let mut layer = PointwiseLinear::<f32>::new(3, 4, true, 1);
        let err = layer.backward(&Tensor::zeros(&[1, 2, 4])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pointwise linear: backward called before forward"
        );
        let err = layer.forward(&Tensor::zeros(&[1, 2, 5])).unwrap_err();
        assert!(
            err.to_string().contains("expected 3 input channels"),
            "{err}"
        );
    }
}
