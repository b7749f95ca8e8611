//! MG-TFNO (Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution
//! PDEs", TMLR 2024): a TFNO run on the patches of a multigrid domain decomposition
//! ([`MgPatching`]), then stitched back into the whole field.
//!
//! ```text
//! x [b, H, W, C] ─ patch ─ [b·n², h+2p, w+2p, C·(levels+1)] ─ TFNO ─ stitch ─ y [b, H, W, C_out]
//! ```
//!
//! With `patch_batch = k` the TFNO sees `k` patches at a time, so a training step holds the
//! activations of `k` patches rather than of whole fields: forward keeps only the patched input,
//! and backward runs each group's forward again before its backward (the last group's is still
//! held). Without it every patch of the batch goes through at once, as neuraloperator does.
//!
//! With `global_coordinates` (the default) the whole field's grid coordinates (the TFNO's
//! `embedding`) are appended before patching, so each patch knows where it lies. Without them a
//! patch sees only patch-local coordinates (neuraloperator's layout) and cannot place anything
//! tied to absolute position, such as the Navier–Stokes forcing `sin(2π(x + y))`: on that data
//! neuraloperator's MG-TFNO and ours without them both stayed at the error of predicting the
//! mean, where the FNO fell to 0.24 in one epoch.
//!
//! `stitching = false` takes the training loss per patch (each patch's relative error, the target
//! cut the same way), neuraloperator's training without stitching; predictions are always
//! stitched.

use super::fno::{Fno, FnoSpec, TfnoSection};
use super::{Io, Section, Spec};
use crate::layers::compose::{prefixed, GridEmbedding};
use crate::layers::patching::MgPatching;
use crate::layers::{Layer, Param};
use crate::param::{require, InvalidParam};
use crate::tensor::{NnError, Real, Tensor};
use crate::train::trainer::gather_rows;

/// Enough to rebuild an MG-TFNO.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MgTfnoSpec {
    /// The TFNO on patches: its input channels are the data's times `levels + 1`.
    pub tfno: FnoSpec,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub patching: MgPatching,
    pub stitching: bool,
    /// Patches per pass through the TFNO (`None`: all of a batch's at once).
    pub patch_batch: Option<usize>,
    /// The whole field's coordinates appended before patching.
    pub global_coordinates: bool,
}

impl MgTfnoSpec {
    /// Channels appended before patching.
    fn coordinate_channels(&self) -> usize {
        if self.global_coordinates {
            self.tfno.frame.embedding.channels(2)
        } else {
            0
        }
    }
}

impl Spec for MgTfnoSpec {
    fn dims(&self) -> usize {
        self.tfno.dims()
    }

    fn channels(&self) -> (usize, usize) {
        (
            (self.tfno.in_channels / (self.patching.levels + 1))
                .saturating_sub(self.coordinate_channels()),
            self.tfno.out_channels,
        )
    }

    fn validate(&self) -> Result<(), InvalidParam> {
        self.tfno.validate()?;
        self.patching.validate()?;
        require(
            self.tfno.modes.len() == 2,
            "modes",
            "two entries: MG-TFNO decomposes 2-D grids",
            format!("{:?}", self.tfno.modes),
        )?;
        require(
            self.tfno
                .in_channels
                .is_multiple_of(self.patching.levels + 1),
            "levels",
            "a level count that divides the patched channels",
            self.patching.levels,
        )?;
        require(
            self.tfno.in_channels / (self.patching.levels + 1) > self.coordinate_channels(),
            "in_channels",
            "at least one data channel besides the coordinates",
            self.tfno.in_channels,
        )?;
        if let Some(k) = self.patch_batch {
            require(k >= 1, "patch_batch", "an integer ≥ 1", k)?;
        }
        Ok(())
    }

    fn weight_values(&self) -> u128 {
        self.tfno.weight_values()
    }
}

#[cfg(feature = "serde")]
fn default_true() -> bool {
    true
}

/// `[train.mgtfno]`: the TFNO keys plus the decomposition's.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MgTfnoSection {
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub tfno: TfnoSection,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub patching: MgPatching,
    /// Train on the stitched field (true) or per patch (false).
    #[cfg_attr(feature = "serde", serde(default = "default_true"))]
    pub stitching: bool,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub patch_batch: Option<usize>,
    /// Append the whole field's coordinates before patching (false: neuraloperator's layout).
    #[cfg_attr(feature = "serde", serde(default = "default_true"))]
    pub global_coordinates: bool,
}

impl Section for MgTfnoSection {
    type Spec = MgTfnoSpec;

    fn spec(&self, io: Io) -> Result<MgTfnoSpec, InvalidParam> {
        let coordinates = if self.global_coordinates {
            self.tfno
                .fno
                .frame
                .embedding
                .channels(self.tfno.fno.modes.len())
        } else {
            0
        };
        let patched = Io {
            in_channels: self.patching.patched_channels(io.in_channels + coordinates),
            ..io
        };
        Ok(MgTfnoSpec {
            tfno: self.tfno.spec(patched)?,
            patching: self.patching,
            stitching: self.stitching,
            patch_batch: self.patch_batch,
            global_coordinates: self.global_coordinates,
        })
    }
}

/// What backward needs: the field's grid, and the patched input when it runs in groups.
struct Saved<T> {
    grid: Vec<usize>,
    patched: Option<Tensor<T>>,
    group: usize,
}

/// Rows `range` of a tensor (its first axis).
fn rows<T: Real>(t: &Tensor<T>, range: std::ops::Range<usize>) -> Tensor<T> {
    gather_rows(t, &range.collect::<Vec<_>>())
}

pub struct MgTfno<T: Real> {
    pub spec: MgTfnoSpec,
    coordinates: Option<GridEmbedding>,
    /// Boxed: the model enum's variants stay of similar size.
    tfno: Box<Fno<T>>,
    saved: Option<Saved<T>>,
}

impl<T: Real> MgTfno<T> {
    pub fn new(spec: MgTfnoSpec) -> Result<Self, NnError> {
        spec.validate().map_err(|param| NnError::Invalid {
            model: "mgtfno",
            param,
        })?;
        Ok(Self {
            coordinates: spec
                .global_coordinates
                .then(|| GridEmbedding::new(spec.tfno.frame.embedding)),
            tfno: Box::new(Fno::new(spec.tfno.clone())?),
            spec,
            saved: None,
        })
    }

    /// The decomposition a training loss is taken over when training without stitching.
    pub fn loss_patches(&self) -> Option<MgPatching> {
        (!self.spec.stitching).then_some(self.spec.patching)
    }
}

impl<T: Real> Layer<T> for MgTfno<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mg = self.spec.patching;
        let (c, _) = self.spec.channels();
        if x.shape.len() != 4 || x.channels() != c {
            return Err(NnError::Shape {
                layer: "mgtfno",
                expected: format!("[batch, 2 grid axes, {c} channels]"),
                got: format!("{:?}", x.shape),
            });
        }
        let grid = x.grid().to_vec();
        let patched = match &mut self.coordinates {
            Some(e) => mg.patch(&e.forward(x)?)?,
            None => mg.patch(x)?,
        };
        let total = patched.shape[0];
        let group = self
            .spec
            .patch_batch
            .unwrap_or(total)
            .clamp(1, total.max(1));
        let y = if group >= total {
            self.saved = Some(Saved {
                grid: grid.clone(),
                patched: None,
                group: total,
            });
            self.tfno.forward_owned(patched)?
        } else {
            let mut shape = Vec::new();
            let mut data = Vec::new();
            for start in (0..total).step_by(group) {
                let part = self
                    .tfno
                    .forward_owned(rows(&patched, start..(start + group).min(total)))?;
                shape = part.shape;
                data.extend_from_slice(&part.data);
            }
            shape[0] = total;
            self.saved = Some(Saved {
                grid: grid.clone(),
                patched: Some(patched),
                group,
            });
            Tensor::from_vec(&shape, data)?
        };
        mg.stitch(&y, &grid)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let Saved {
            grid,
            patched,
            group,
        } = self
            .saved
            .take()
            .ok_or(NnError::NoForward { layer: "mgtfno" })?;
        let mg = self.spec.patching;
        let dp = mg.stitch_adjoint(dy)?;
        let dpatched = match patched {
            None => self.tfno.backward_owned(dp)?,
            Some(patched) => {
                let total = patched.shape[0];
                let mut out = Tensor::zeros(&patched.shape);
                let per = out.data.len() / total;
                let starts: Vec<usize> = (0..total).step_by(group).collect();
                for (k, &start) in starts.iter().enumerate().rev() {
                    let range = start..(start + group).min(total);
                    // The last group's activations are still held; the others run again.
                    if k + 1 < starts.len() {
                        self.tfno.forward_owned(rows(&patched, range.clone()))?;
                    }
                    let g = self.tfno.backward_owned(rows(&dp, range.clone()))?;
                    out.data[range.start * per..range.end * per].copy_from_slice(&g.data);
                }
                out
            }
        };
        let dx = mg.patch_adjoint(&dpatched, &grid)?;
        match &mut self.coordinates {
            Some(e) => e.backward(&dx),
            None => Ok(dx),
        }
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        prefixed("tfno", self.tfno.parameters())
    }

    fn loss_patches(&self) -> Option<MgPatching> {
        MgTfno::loss_patches(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::factorized::{Factorization, Rank};
    use crate::layers::gradcheck::{check, random};
    use crate::models::fno::GridFrame;

    pub(crate) fn spec(levels: usize, patch_batch: Option<usize>) -> MgTfnoSpec {
        MgTfnoSpec {
            tfno: FnoSpec {
                in_channels: levels + 1,
                out_channels: 1,
                width: 4,
                modes: vec![2, 2],
                layers: 2,
                frame: GridFrame::default(),
                factorization: Factorization::Tucker(Rank::Fraction(0.5)),
                block: Default::default(),
                seed: 3,
            },
            patching: MgPatching {
                levels,
                padding_fraction: 0.125,
            },
            stitching: true,
            patch_batch,
            global_coordinates: false,
        }
    }

    #[test]
    fn gradients_through_the_patched_model_match_finite_differences() {
        for (levels, group) in [(0, None), (1, None), (1, Some(3)), (2, Some(5))] {
            let mut m = MgTfno::<f64>::new(spec(levels, group)).unwrap();
            let x = random(&[2, 8, 8, 1], 5);
            let worst = check(&mut m, &x);
            assert!(worst < 1e-5, "levels {levels}, group {group:?}: {worst:e}");
        }
        // With the whole field's coordinates appended before patching.
        let mut with = spec(1, Some(3));
        with.global_coordinates = true;
        with.tfno.in_channels = 2 * (1 + 2);
        let mut m = MgTfno::<f64>::new(with).unwrap();
        assert_eq!(m.spec.channels(), (1, 1));
        let worst = check(&mut m, &random(&[2, 8, 8, 1], 6));
        assert!(worst < 1e-5, "global coordinates: {worst:e}");
    }

    #[test]
    fn grouped_patches_give_the_same_outputs_and_gradients_as_all_at_once() {
        let x = random(&[3, 16, 16, 1], 7);
        let dy = random(&[3, 16, 16, 1], 8);
        let run = |group| {
            let mut m = MgTfno::<f64>::new(spec(1, group)).unwrap();
            let y = m.forward(&x).unwrap();
            m.zero_grad();
            let dx = m.backward(&dy).unwrap();
            let grads: Vec<f64> = m
                .parameters()
                .iter()
                .flat_map(|p| p.grad.to_vec())
                .collect();
            (y, dx, grads)
        };
        let (y0, dx0, g0) = run(None);
        for group in [1, 5, 12] {
            let (y, dx, g) = run(Some(group));
            assert_eq!(y, y0);
            let close = |a: &[f64], b: &[f64]| {
                a.iter()
                    .zip(b)
                    .all(|(p, q)| (p - q).abs() <= 1e-12 * (1.0 + q.abs()))
            };
            assert!(
                close(&dx.data, &dx0.data) && close(&g, &g0),
                "group {group}"
            );
        }
    }

    #[test]
    fn another_resolution_works_where_divisible_and_is_a_clear_error_elsewhere() {
        let mut m = MgTfno::<f64>::new(spec(2, None)).unwrap();
        assert_eq!(
            m.forward(&random(&[1, 16, 16, 1], 1)).unwrap().shape,
            vec![1, 16, 16, 1]
        );
        assert_eq!(
            m.forward(&random(&[1, 32, 32, 1], 1)).unwrap().shape,
            vec![1, 32, 32, 1]
        );
        let e = m
            .forward(&random(&[1, 18, 16, 1], 1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("levels = 2") && e.contains("multiples of 4"),
            "{e}"
        );
        let e = m
            .forward(&random(&[1, 16, 16, 2], 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 channels"), "{e}");
    }

    #[test]
    fn a_tiny_mgtfno_overfits_eight_samples_with_and_without_stitching() {
        for stitching in [true, false] {
            let mut spec = spec(1, Some(6));
            spec.stitching = stitching;
            // One run with the whole field's coordinates, one without.
            spec.global_coordinates = stitching;
            spec.tfno.in_channels = if stitching { 6 } else { 2 };
            spec.tfno.width = 8;
            spec.tfno.modes = vec![4, 4];
            let mut m = MgTfno::<f64>::new(spec).unwrap();
            assert_eq!(m.loss_patches().is_some(), !stitching);
            let (first, last) = crate::models::overfit::first_and_last_error(&mut m, 16);
            assert!(
                last < 0.05 && last < 0.1 * first,
                "stitching {stitching}: {first} → {last}"
            );
        }
    }
}
