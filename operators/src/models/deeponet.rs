//! DeepONet (Lu et al., 2021): `G(u)(y)_c = Σ_k b_{k,c}(u)·t_k(y) + β_c`, a branch MLP on the
//! input field at fixed sensor points and a trunk MLP on the output coordinates, evaluated as a
//! Cartesian product (the trunk once per grid, one matrix product per sample).
//!
//! Sensors form a regular grid over the unit cube (coordinates `j/(s−1)`, as the data's grid
//! points `j/(n−1)`). When the data's grid is the sensor grid the values are used as they are;
//! otherwise they are interpolated (multilinear), so a trained DeepONet runs on any resolution:
//! the trunk evaluates the output wherever asked.

use super::{Io, Section, Spec};
use crate::layers::compose::{prefixed, Sequential};
use crate::layers::linear::{Gelu, PointwiseLinear};
use crate::layers::{Layer, Param};
use crate::param::{per_axis, require, InvalidParam};
use crate::tensor::{unravel, NnError, Real, Tensor};

#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeepOnetSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub section: DeepOnetSection,
    #[cfg_attr(feature = "serde", serde(default))]
    pub seed: u64,
}

/// `[train.deeponet]`: a branch MLP on sensor values, a trunk MLP on coordinates.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DeepOnetSection {
    /// Sensor points per grid axis (its length is the dimension); the input is interpolated onto
    /// them when its grid differs.
    pub sensors: Vec<usize>,
    /// Hidden widths of the branch and trunk MLPs.
    pub branch: Vec<usize>,
    pub trunk: Vec<usize>,
    /// Basis functions per output channel.
    pub basis: usize,
}

impl Section for DeepOnetSection {
    type Spec = DeepOnetSpec;

    fn spec(&self, io: Io) -> Result<DeepOnetSpec, InvalidParam> {
        Ok(DeepOnetSpec {
            in_channels: io.in_channels,
            out_channels: io.out_channels,
            section: self.clone(),
            seed: io.seed,
        })
    }
}

impl Spec for DeepOnetSpec {
    fn dims(&self) -> usize {
        self.section.sensors.len()
    }

    fn channels(&self) -> (usize, usize) {
        (self.in_channels, self.out_channels)
    }

    fn weight_values(&self) -> u128 {
        let s = &self.section;
        let sensors = super::product(s.sensors.iter().copied());
        let widths = |first: u128, hidden: &[usize], last: usize| {
            let mut all = vec![first];
            all.extend(hidden.iter().map(|&w| w as u128));
            all.push(last as u128);
            all.windows(2).fold(0u128, |sum, w| {
                sum.saturating_add(w[0].saturating_mul(w[1]))
            })
        };
        widths(
            sensors.saturating_mul(self.in_channels as u128),
            &s.branch,
            s.basis.saturating_mul(self.out_channels),
        )
        .saturating_add(widths(s.sensors.len() as u128, &s.trunk, s.basis))
    }

    fn validate(&self) -> Result<(), InvalidParam> {
        let s = &self.section;
        per_axis("sensors", &s.sensors)?;
        for (field, widths) in [("branch", &s.branch), ("trunk", &s.trunk)] {
            require(
                !widths.is_empty() && !widths.contains(&0),
                field,
                "a non-empty list of positive widths",
                format!("{widths:?}"),
            )?;
        }
        require(s.basis >= 1, "basis", "an integer ≥ 1", s.basis)
    }
}

/// Linear layers through `widths` with GELU between (and after the last when `act_last`).
fn mlp<T: Real>(widths: &[usize], act_last: bool, seed: u64) -> Sequential<T> {
    let mut layers: Vec<(String, Box<dyn Layer<T>>)> = Vec::new();
    for (i, w) in widths.windows(2).enumerate() {
        layers.push((
            format!("fc{i}"),
            Box::new(PointwiseLinear::new(w[0], w[1], true, seed + i as u64)),
        ));
        if i + 2 < widths.len() || act_last {
            layers.push((format!("act{i}"), Box::new(Gelu::new())));
        }
    }
    Sequential { layers }
}

/// For each target point, the source points and weights that interpolate it.
type Stencils = Vec<Vec<(usize, f64)>>;

/// The [`Stencils`] from grid `from` to grid `to` (multilinear, both grids spanning [0, 1] with
/// their end points).
fn interpolation(from: &[usize], to: &[usize]) -> Stencils {
    let axis = |n_from: usize, n_to: usize| -> Vec<Vec<(usize, f64)>> {
        (0..n_to)
            .map(|t| {
                if n_from == 1 {
                    return vec![(0, 1.0)];
                }
                let x = if n_to == 1 {
                    0.0
                } else {
                    t as f64 * (n_from - 1) as f64 / (n_to - 1) as f64
                };
                let i = (x.floor() as usize).min(n_from - 2);
                let w = x - i as f64;
                vec![(i, 1.0 - w), (i + 1, w)]
            })
            .collect()
    };
    let per_axis: Vec<_> = from.iter().zip(to).map(|(&f, &t)| axis(f, t)).collect();
    let mut out = vec![vec![(0usize, 1.0f64)]];
    for (a, ax) in per_axis.iter().enumerate() {
        out = out
            .iter()
            .flat_map(|prev| {
                ax.iter().map(move |terms| {
                    prev.iter()
                        .flat_map(|&(p, pw)| {
                            terms.iter().map(move |&(i, w)| (p * from[a] + i, pw * w))
                        })
                        .collect()
                })
            })
            .collect();
    }
    out
}

/// Coordinates `j/(n−1)` of every point of `grid`, as a `[points, d]` tensor.
fn coordinates<T: Real>(grid: &[usize]) -> Tensor<T> {
    let points: usize = grid.iter().product();
    let d = grid.len();
    let mut data = Vec::with_capacity(points * d);
    let mut idx = vec![0; d];
    for p in 0..points {
        unravel(p, grid, &mut idx);
        data.extend(idx.iter().zip(grid).map(|(&i, &n)| {
            T::lit(if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.0
            })
        }));
    }
    Tensor {
        shape: vec![points, d],
        data,
    }
}

/// What the last forward pass saw.
struct Saved<T> {
    batch: usize,
    grid: Vec<usize>,
    branch_out: Vec<T>,
    trunk_out: Vec<T>,
}

pub struct DeepOnet<T: Real> {
    pub spec: DeepOnetSpec,
    branch: Sequential<T>,
    trunk: Sequential<T>,
    bias: Vec<T>,
    bias_grad: Vec<T>,
    /// Interpolation from the last grid to the sensors (None: the grid is the sensor grid).
    sampling: Option<(Vec<usize>, Stencils)>,
    saved: Option<Saved<T>>,
}

impl<T: Real> DeepOnet<T> {
    pub fn new(spec: DeepOnetSpec) -> Result<Self, NnError> {
        spec.validate().map_err(|param| NnError::Invalid {
            model: "deeponet",
            param,
        })?;
        let s = spec.seed.wrapping_mul(1000);
        let sensors: usize = spec.section.sensors.iter().product();
        let mut bw = vec![sensors * spec.in_channels];
        bw.extend(&spec.section.branch);
        bw.push(spec.section.basis * spec.out_channels);
        let mut tw = vec![spec.section.sensors.len()];
        tw.extend(&spec.section.trunk);
        tw.push(spec.section.basis);
        Ok(Self {
            branch: mlp(&bw, false, s),
            trunk: mlp(&tw, true, s + 100),
            bias: vec![T::zero(); spec.out_channels],
            bias_grad: vec![T::zero(); spec.out_channels],
            spec,
            sampling: None,
            saved: None,
        })
    }

    fn sampling_for(&mut self, grid: &[usize]) -> Option<&Stencils> {
        if grid == self.spec.section.sensors.as_slice() {
            return None;
        }
        if self.sampling.as_ref().is_none_or(|(g, _)| g != grid) {
            self.sampling = Some((
                grid.to_vec(),
                interpolation(grid, &self.spec.section.sensors),
            ));
        }
        self.sampling.as_ref().map(|(_, w)| w)
    }
}

impl<T: Real> Layer<T> for DeepOnet<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let d = self.spec.section.sensors.len();
        let ci = self.spec.in_channels;
        if x.shape.len() != d + 2 || x.channels() != ci {
            return Err(NnError::Shape {
                layer: "deeponet",
                expected: format!("[batch, {d} grid axes, {ci} channels]"),
                got: format!("{:?}", x.shape),
            });
        }
        let batch = x.shape[0];
        let grid = x.grid().to_vec();
        let points: usize = grid.iter().product();
        let sensors: usize = self.spec.section.sensors.iter().product();
        let sampled = match self.sampling_for(&grid) {
            None => x.data.clone(),
            Some(weights) => {
                let mut s = vec![T::zero(); batch * sensors * ci];
                for b in 0..batch {
                    for (q, terms) in weights.iter().enumerate() {
                        for &(p, w) in terms {
                            for c in 0..ci {
                                let v = x.data[(b * points + p) * ci + c] * T::lit(w);
                                s[(b * sensors + q) * ci + c] = s[(b * sensors + q) * ci + c] + v;
                            }
                        }
                    }
                }
                s
            }
        };
        let br = self
            .branch
            .forward(&Tensor::from_vec(&[batch, sensors * ci], sampled)?)?;
        let tr = self.trunk.forward(&coordinates(&grid))?;
        let (p, co) = (self.spec.section.basis, self.spec.out_channels);
        let mut out = vec![T::zero(); batch * points * co];
        for b in 0..batch {
            // out_b (points × co) = tr (points × p)·br_bᵀ (p × co), br_b[c][k] at c·p + k.
            T::gemm(
                points,
                p,
                co,
                T::one(),
                &tr.data,
                (p as isize, 1),
                &br.data[b * p * co..],
                (1, p as isize),
                T::zero(),
                &mut out[b * points * co..],
                (co as isize, 1),
            );
        }
        for row in out.chunks_mut(co) {
            for (v, beta) in row.iter_mut().zip(&self.bias) {
                *v = *v + *beta;
            }
        }
        self.saved = Some(Saved {
            batch,
            grid: grid.clone(),
            branch_out: br.data,
            trunk_out: tr.data,
        });
        let mut shape = x.shape.clone();
        shape[d + 1] = co;
        Tensor::from_vec(&shape, out)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let saved = self
            .saved
            .take()
            .ok_or(NnError::NoForward { layer: "deeponet" })?;
        let (p, co, ci) = (
            self.spec.section.basis,
            self.spec.out_channels,
            self.spec.in_channels,
        );
        let batch = saved.batch;
        let points: usize = saved.grid.iter().product();
        if dy.data.len() != batch * points * co {
            return Err(NnError::Shape {
                layer: "deeponet",
                expected: format!("an output gradient of {} values", batch * points * co),
                got: format!("{:?}", dy.shape),
            });
        }
        for row in dy.data.chunks(co) {
            for (g, v) in self.bias_grad.iter_mut().zip(row) {
                *g = *g + *v;
            }
        }
        let mut g_br = vec![T::zero(); batch * co * p];
        let mut g_tr = vec![T::zero(); points * p];
        for b in 0..batch {
            let dyb = &dy.data[b * points * co..];
            // g_br_b (co × p) = dy_bᵀ (co × points)·tr (points × p).
            T::gemm(
                co,
                points,
                p,
                T::one(),
                dyb,
                (1, co as isize),
                &saved.trunk_out,
                (p as isize, 1),
                T::zero(),
                &mut g_br[b * co * p..],
                (p as isize, 1),
            );
            // g_tr (points × p) += dy_b (points × co)·br_b (co × p).
            T::gemm(
                points,
                co,
                p,
                T::one(),
                dyb,
                (co as isize, 1),
                &saved.branch_out[b * co * p..],
                (p as isize, 1),
                T::one(),
                &mut g_tr,
                (p as isize, 1),
            );
        }
        self.trunk
            .backward(&Tensor::from_vec(&[points, p], g_tr)?)?;
        let g_s = self
            .branch
            .backward(&Tensor::from_vec(&[batch, co * p], g_br)?)?;
        let mut shape = vec![batch];
        shape.extend(&saved.grid);
        shape.push(ci);
        let sensors: usize = self.spec.section.sensors.iter().product();
        match self.sampling_for(&saved.grid) {
            None => Tensor::from_vec(&shape, g_s.data),
            Some(weights) => {
                let mut dx = vec![T::zero(); batch * points * ci];
                for b in 0..batch {
                    for (q, terms) in weights.iter().enumerate() {
                        for &(pt, w) in terms {
                            for c in 0..ci {
                                let v = g_s.data[(b * sensors + q) * ci + c] * T::lit(w);
                                dx[(b * points + pt) * ci + c] = dx[(b * points + pt) * ci + c] + v;
                            }
                        }
                    }
                }
                Tensor::from_vec(&shape, dx)
            }
        }
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = prefixed("branch", self.branch.parameters());
        out.extend(prefixed("trunk", self.trunk.parameters()));
        out.push(Param {
            name: "bias".into(),
            value: &mut self.bias,
            grad: &mut self.bias_grad,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, random};

    fn spec(sensors: Vec<usize>) -> DeepOnetSpec {
        DeepOnetSpec {
            in_channels: 2,
            out_channels: 2,
            section: DeepOnetSection {
                sensors,
                branch: vec![5],
                trunk: vec![4, 3],
                basis: 3,
            },
            seed: 1,
        }
    }

    #[test]
    fn deeponet_gradients_match_finite_differences_on_and_off_the_sensor_grid() {
        let mut model = DeepOnet::<f64>::new(spec(vec![4, 3])).unwrap();
        let worst = check(&mut model, &random(&[2, 4, 3, 2], 1));
        assert!(worst < 1e-6, "on the sensor grid: {worst:e}");
        let worst = check(&mut model, &random(&[2, 6, 5, 2], 2));
        assert!(worst < 1e-6, "interpolated: {worst:e}");
    }

    #[test]
    fn interpolation_reproduces_linear_fields_and_the_output_is_a_cartesian_product() {
        // A linear field 2x − y sampled from 9 × 5 onto 4 × 3 sensors is exact.
        let w = interpolation(&[9, 5], &[4, 3]);
        let f = |i: usize, j: usize, n: (usize, usize)| {
            2.0 * i as f64 / (n.0 - 1) as f64 - j as f64 / (n.1 - 1) as f64
        };
        for (q, terms) in w.iter().enumerate() {
            let v: f64 = terms
                .iter()
                .map(|&(p, wt)| wt * f(p / 5, p % 5, (9, 5)))
                .sum();
            assert!((v - f(q / 3, q % 3, (4, 3))).abs() < 1e-12);
        }
        // Two samples that differ only in the branch give outputs whose difference is the
        // trunk basis times the branch difference: check via linearity in the bias.
        let mut model = DeepOnet::<f64>::new(spec(vec![4, 3])).unwrap();
        let x = random(&[1, 4, 3, 2], 3);
        let y0 = model.forward(&x).unwrap();
        model.bias = vec![1.0, -2.0];
        let y1 = model.forward(&x).unwrap();
        for (i, (a, b)) in y0.data.iter().zip(&y1.data).enumerate() {
            let want = if i % 2 == 0 { 1.0 } else { -2.0 };
            assert!((b - a - want).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_specs_and_inputs_are_clear_errors() {
        let mut s = spec(vec![4, 3]);
        s.section.branch.clear();
        let err = DeepOnet::<f64>::new(s).err().unwrap().to_string();
        assert_eq!(
            err,
            "deeponet.branch: expected a non-empty list of positive widths, got []"
        );
        let mut model = DeepOnet::<f64>::new(spec(vec![4, 3])).unwrap();
        let err = model.forward(&Tensor::zeros(&[1, 4, 3, 1])).unwrap_err();
        assert!(err.to_string().contains("2 channels"), "{err}");
    }
}
