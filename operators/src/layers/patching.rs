//! Multigrid domain decomposition (MG-TFNO, Kossaifi et al., TMLR 2024), as neuraloperator's
//! `MultigridPatching2D` lays it out, as a pure data transform on 2-D fields:
//!
//! - each axis of an `H × W` field is cut into `n = 2^levels` pieces of `h = H / n` points, and
//!   each patch is padded circularly by `p = round(H · padding_fraction)` points on both sides;
//! - level `l = 1…levels` adds the field subsampled by `2^l`, cut into windows of the same padded
//!   size centred on the same patches, so a patch also sees a coarse view `2^l` times wider;
//! - the levels are stacked on the channel axis (`C` channels become `C · (levels + 1)`, level 0
//!   first) and the patches on the batch axis, patch `(i, j)` of sample `b` at `b·n² + i·n + j`.
//!
//! Stitching drops the padding and puts the patches back. Every map here is a gather through one
//! index table, so [`MgPatching::patch_adjoint`] (a scatter-add through the same table) is its
//! exact transpose, and patch-then-stitch is the identity.

use crate::param::{require, InvalidParam};
use crate::tensor::{NnError, Real, Tensor};

/// The decomposition's settings (`levels`, `padding_fraction`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MgPatching {
    /// Each axis is cut into `2^levels` patches; 0 leaves the field whole.
    pub levels: usize,
    /// Circular padding of each patch, as a fraction of the whole field's side.
    pub padding_fraction: f64,
}

/// The index tables of one grid: for every level and patch, the source row (column) of each
/// padded patch row (column).
struct Tables {
    grid: [usize; 2],
    /// Patches per axis.
    n: usize,
    /// Padding per axis.
    pad: [usize; 2],
    /// `[axis][level][patch][t]`: source index along the axis.
    src: [Vec<Vec<Vec<usize>>>; 2],
}

impl Tables {
    /// Calls `copy(patched offset, field offset)` for every run of `c` values patching copies,
    /// for `b` samples and `levels + 1` levels. Patching gathers along these; its adjoint
    /// scatter-adds back along the same.
    fn for_each_copy(&self, b: usize, c: usize, levels: usize, mut copy: impl FnMut(usize, usize)) {
        let n = self.n;
        let [ph, pw] = self.padded();
        let lc = c * (levels + 1);
        let per = self.grid[0] * self.grid[1] * c;
        for patch in 0..b * n * n {
            let (s, i, j) = (patch / (n * n), patch / n % n, patch % n);
            for l in 0..=levels {
                let (rows, cols) = (&self.src[0][l][i], &self.src[1][l][j]);
                for (r, &row) in rows.iter().enumerate() {
                    let to = ((patch * ph + r) * pw) * lc + l * c;
                    let from = s * per + row * self.grid[1] * c;
                    for (q, &col) in cols.iter().enumerate() {
                        copy(to + q * lc, from + col * c);
                    }
                }
            }
        }
    }

    fn padded(&self) -> [usize; 2] {
        [
            self.grid[0] / self.n + 2 * self.pad[0],
            self.grid[1] / self.n + 2 * self.pad[1],
        ]
    }
}

impl MgPatching {
    pub const MAX_LEVELS: usize = 6;

    pub fn validate(&self) -> Result<(), InvalidParam> {
        require(
            self.levels <= Self::MAX_LEVELS,
            "levels",
            &format!("an integer in [0, {}]", Self::MAX_LEVELS),
            self.levels,
        )?;
        require(
            (0.0..=0.5).contains(&self.padding_fraction),
            "padding_fraction",
            "a number in [0, 0.5]",
            self.padding_fraction,
        )
    }

    /// Patches per axis, `2^levels`.
    pub fn per_axis(&self) -> usize {
        1 << self.levels
    }

    /// Patches per sample.
    pub fn per_sample(&self) -> usize {
        self.per_axis() * self.per_axis()
    }

    /// Circular padding of a patch along an axis of `side` points.
    pub fn padding(&self, side: usize) -> usize {
        (side as f64 * self.padding_fraction).round() as usize
    }

    /// Channels of the patched tensor for `channels` input channels.
    pub fn patched_channels(&self, channels: usize) -> usize {
        channels * (self.levels + 1)
    }

    /// Whether a 2-D grid can be decomposed: each axis divisible by `2^levels`.
    pub fn check_grid(&self, grid: &[usize]) -> Result<(), NnError> {
        let n = self.per_axis();
        if grid.len() != 2 || grid.iter().any(|&s| s == 0 || s % n != 0) {
            return Err(NnError::BadSpec {
                layer: "multigrid patching",
                message: format!(
                    "levels = {} cuts each axis into {n} patches, so a 2-D grid whose sides are multiples of {n} is needed; got grid {grid:?}",
                    self.levels
                ),
            });
        }
        Ok(())
    }

    fn tables(&self, grid: &[usize]) -> Result<Tables, NnError> {
        self.check_grid(grid)?;
        let n = self.per_axis();
        let grid = [grid[0], grid[1]];
        let pad = [self.padding(grid[0]), self.padding(grid[1])];
        let src = [0, 1].map(|a| {
            let (side, p) = (grid[a] as isize, pad[a] as isize);
            let h = side / n as isize;
            (0..=self.levels)
                .map(|l| {
                    let sub = 1isize << l;
                    let coarse = side / sub;
                    let stride = h / sub;
                    // Where window 0 starts on the subsampled axis: the windows are centred on
                    // their patches (at level 0 this is just `-p`).
                    let start = -(((h + (n as isize - 1) * stride - coarse) as f64 / 2.0).ceil()
                        as isize
                        + p);
                    (0..n as isize)
                        .map(|i| {
                            (0..h + 2 * p)
                                .map(|t| {
                                    (sub * (start + i * stride + t).rem_euclid(coarse)) as usize
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect()
        });
        Ok(Tables { grid, n, pad, src })
    }

    fn field_shape<T>(x: &Tensor<T>, what: &str) -> Result<(usize, [usize; 2], usize), NnError> {
        if x.shape.len() != 4 {
            return Err(NnError::Shape {
                layer: "multigrid patching",
                expected: format!("{what} of shape [batch, n_1, n_2, channels]"),
                got: format!("{:?}", x.shape),
            });
        }
        Ok((x.shape[0], [x.shape[1], x.shape[2]], x.shape[3]))
    }

    /// `[b, H, W, C]` → `[b·n², h + 2p, w + 2q, C·(levels + 1)]`.
    pub fn patch<T: Real>(&self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let (b, grid, c) = Self::field_shape(x, "a field")?;
        let t = self.tables(&grid)?;
        let [ph, pw] = t.padded();
        let n = t.n;
        let mut out = Tensor::zeros(&[b * n * n, ph, pw, self.patched_channels(c)]);
        t.for_each_copy(b, c, self.levels, |to, from| {
            out.data[to..to + c].copy_from_slice(&x.data[from..from + c]);
        });
        Ok(out)
    }

    /// The transpose of [`MgPatching::patch`]: each patched value's gradient is added to the
    /// field value it was copied from. `grid` is the field's.
    pub fn patch_adjoint<T: Real>(
        &self,
        dp: &Tensor<T>,
        grid: &[usize],
    ) -> Result<Tensor<T>, NnError> {
        let t = self.tables(grid)?;
        let [ph, pw] = t.padded();
        let n = t.n;
        let (bp, _, lc) = Self::field_shape(dp, "patches")?;
        if dp.shape[1..3] != [ph, pw] || bp % (n * n) != 0 || lc % (self.levels + 1) != 0 {
            return Err(NnError::Shape {
                layer: "multigrid patching",
                expected: format!(
                    "patches of shape [k·{}, {ph}, {pw}, channels·{}]",
                    n * n,
                    self.levels + 1
                ),
                got: format!("{:?}", dp.shape),
            });
        }
        let c = lc / (self.levels + 1);
        let b = bp / (n * n);
        let mut dx = Tensor::zeros(&[b, grid[0], grid[1], c]);
        t.for_each_copy(b, c, self.levels, |from, to| {
            for (d, &g) in dx.data[to..to + c].iter_mut().zip(&dp.data[from..from + c]) {
                *d = *d + g;
            }
        });
        Ok(dx)
    }

    /// The runs that stitching copies between a field `[b, H, W, C]` and its level-0 patches
    /// `[b·n², h + 2p', w + 2q', C]` with padding `p'` (the model's for its output, 0 for unpadded
    /// patches): `(field offset, patch offset)` of each patch row's `w · C` interior values.
    fn interior_runs(
        &self,
        b: usize,
        grid: [usize; 2],
        c: usize,
        pad: [usize; 2],
    ) -> impl Iterator<Item = (usize, usize)> {
        let n = self.per_axis();
        let (h, w) = (grid[0] / n, grid[1] / n);
        let (ph, pw) = (h + 2 * pad[0], w + 2 * pad[1]);
        (0..b * n * n).flat_map(move |patch| {
            let (s, i, j) = (patch / (n * n), patch / n % n, patch % n);
            (0..h).map(move |r| {
                (
                    ((s * grid[0] + i * h + r) * grid[1] + j * w) * c,
                    ((patch * ph + pad[0] + r) * pw + pad[1]) * c,
                )
            })
        })
    }

    /// Padded output patches `[b·n², h + 2p, w + 2q, C]` → the field `[b, H, W, C]`.
    pub fn stitch<T: Real>(&self, y: &Tensor<T>, grid: &[usize]) -> Result<Tensor<T>, NnError> {
        self.stitch_with(y, grid, true)
    }

    /// The transpose of [`MgPatching::stitch`]: a field's gradient → padded patches, zero in the
    /// padding.
    pub fn stitch_adjoint<T: Real>(&self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.unstitch(dy, true)
    }

    /// A field `[b, H, W, C]` → its level-0 patches without padding `[b·n², h, w, C]`: the same
    /// values regrouped, what a loss per patch compares (training without stitching).
    pub fn split<T: Real>(&self, y: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.unstitch(y, false)
    }

    /// The inverse of [`MgPatching::split`].
    pub fn join<T: Real>(&self, p: &Tensor<T>, grid: &[usize]) -> Result<Tensor<T>, NnError> {
        self.stitch_with(p, grid, false)
    }

    fn stitch_with<T: Real>(
        &self,
        y: &Tensor<T>,
        grid: &[usize],
        padded: bool,
    ) -> Result<Tensor<T>, NnError> {
        let t = self.tables(grid)?;
        let pad = if padded { t.pad } else { [0, 0] };
        let n = t.n;
        let (bp, got, c) = Self::field_shape(y, "patches")?;
        let want = [grid[0] / n + 2 * pad[0], grid[1] / n + 2 * pad[1]];
        if got != want || bp % (n * n) != 0 {
            return Err(NnError::Shape {
                layer: "multigrid stitching",
                expected: format!(
                    "patches of shape [k·{}, {}, {}, channels]",
                    n * n,
                    want[0],
                    want[1]
                ),
                got: format!("{:?}", y.shape),
            });
        }
        let b = bp / (n * n);
        let mut out = Tensor::zeros(&[b, grid[0], grid[1], c]);
        let run = grid[1] / n * c;
        for (f, p) in self.interior_runs(b, t.grid, c, pad) {
            out.data[f..f + run].copy_from_slice(&y.data[p..p + run]);
        }
        Ok(out)
    }

    fn unstitch<T: Real>(&self, y: &Tensor<T>, padded: bool) -> Result<Tensor<T>, NnError> {
        let (b, grid, c) = Self::field_shape(y, "a field")?;
        let t = self.tables(&grid)?;
        let pad = if padded { t.pad } else { [0, 0] };
        let n = t.n;
        let shape = [
            b * n * n,
            grid[0] / n + 2 * pad[0],
            grid[1] / n + 2 * pad[1],
            c,
        ];
        let mut out = Tensor::zeros(&shape);
        let run = grid[1] / n * c;
        for (f, p) in self.interior_runs(b, grid, c, pad) {
            out.data[p..p + run].copy_from_slice(&y.data[f..f + run]);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// value = 1000 b + 10 (W i + j) + channel, so every value names where it came from.
    fn field(b: usize, grid: [usize; 2], c: usize) -> Tensor<f64> {
        let mut data = Vec::new();
        for s in 0..b {
            for i in 0..grid[0] {
                for j in 0..grid[1] {
                    for ch in 0..c {
                        data.push((100_000 * s + 10 * (grid[1] * i + j) + ch) as f64);
                    }
                }
            }
        }
        Tensor::from_vec(&[b, grid[0], grid[1], c], data).unwrap()
    }

    #[test]
    fn patch_then_stitch_is_the_identity_and_split_join_too() {
        for levels in 0..=2 {
            for padding_fraction in [0.0, 0.05, 0.1, 0.25] {
                let mg = MgPatching {
                    levels,
                    padding_fraction,
                };
                for grid in [[16, 16], [24, 8], [32, 16]] {
                    let x = field(2, grid, 3);
                    let p = mg.patch(&x).unwrap();
                    let n = mg.per_axis();
                    let (pad0, pad1) = (mg.padding(grid[0]), mg.padding(grid[1]));
                    assert_eq!(
                        p.shape,
                        vec![
                            2 * n * n,
                            grid[0] / n + 2 * pad0,
                            grid[1] / n + 2 * pad1,
                            3 * (levels + 1)
                        ]
                    );
                    // The level-0 channels stitched back are the field.
                    let level0 = Tensor::from_vec(
                        &[p.shape[0], p.shape[1], p.shape[2], 3],
                        p.data
                            .chunks(3 * (levels + 1))
                            .flat_map(|v| v[..3].to_vec())
                            .collect(),
                    )
                    .unwrap();
                    assert_eq!(mg.stitch(&level0, &grid).unwrap(), x);
                    assert_eq!(mg.join(&mg.split(&x).unwrap(), &grid).unwrap(), x);
                }
            }
        }
    }

    #[test]
    fn patches_are_circularly_padded_and_the_coarse_views_exact_subsamplings_centred_on_them() {
        let grid = [16, 16];
        let mg = MgPatching {
            levels: 2,
            padding_fraction: 0.125,
        };
        let x = field(1, grid, 1);
        let p = mg.patch(&x).unwrap();
        let (n, h, pad) = (4, 4, 2);
        let side = h + 2 * pad;
        let at = |patch: usize, r: usize, q: usize, l: usize| {
            p.data[((patch * side + r) * side + q) * 3 + l]
        };
        let value = |row: usize, col: usize| (10 * (16 * row + col)) as f64;
        for i in 0..n {
            for j in 0..n {
                let patch = i * n + j;
                for r in 0..side {
                    for q in 0..side {
                        // Level 0: the patch and its circular halo.
                        let row = (i * h + r + 16 - pad) % 16;
                        let col = (j * h + q + 16 - pad) % 16;
                        assert_eq!(at(patch, r, q, 0), value(row, col));
                        // Level l: every 2^l-th point, same window size, centred on the patch.
                        for l in 1..=2usize {
                            let sub = 1 << l;
                            let (got_r, got_c) = {
                                let v = at(patch, r, q, l) as usize / 10;
                                (v / 16, v % 16)
                            };
                            assert_eq!(got_r % sub, 0);
                            assert_eq!(got_c % sub, 0);
                            // Consecutive window points are `sub` apart (circularly).
                            if r + 1 < side {
                                let next = at(patch, r + 1, q, l) as usize / 10 / 16;
                                assert_eq!(next, (got_r + sub) % 16);
                            }
                        }
                    }
                }
                // The window's centre is the patch's centre (up to one coarse step).
                for l in 1..=2usize {
                    let sub = 1 << l;
                    let centre_row = at(patch, side / 2, 0, l) as usize / 10 / 16;
                    let want = i * h + h / 2;
                    let d = (centre_row + 16 - want) % 16;
                    assert!(
                        d.min(16 - d) <= sub,
                        "level {l} patch {i},{j}: {centre_row}"
                    );
                }
            }
        }
    }

    #[test]
    fn adjoints_are_exact_transposes() {
        use crate::layers::gradcheck::random;
        for (levels, frac) in [(0, 0.0), (1, 0.1), (2, 0.2)] {
            let mg = MgPatching {
                levels,
                padding_fraction: frac,
            };
            let grid = [16, 12];
            let x = random(&[2, 16, 12, 2], 1);
            let px = mg.patch(&x).unwrap();
            let dp = random(&px.shape, 2);
            let lhs: f64 = px.data.iter().zip(&dp.data).map(|(a, b)| a * b).sum();
            let rhs: f64 = x
                .data
                .iter()
                .zip(&mg.patch_adjoint(&dp, &grid).unwrap().data)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0),
                "{lhs} {rhs}"
            );
            let y = random(&[4 << (2 * levels), px.shape[1], px.shape[2], 1], 3);
            let dy = random(&[2, 16, 12, 1], 4);
            let lhs: f64 = mg
                .stitch(&y, &grid)
                .unwrap()
                .data
                .iter()
                .zip(&dy.data)
                .map(|(a, b)| a * b)
                .sum();
            let rhs: f64 = y
                .data
                .iter()
                .zip(&mg.stitch_adjoint(&dy).unwrap().data)
                .map(|(a, b)| a * b)
                .sum();
            assert!(
                (lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0),
                "{lhs} {rhs}"
            );
        }
    }

    #[test]
    fn grids_not_divisible_by_the_patch_count_and_bad_shapes_are_clear_errors() {
        let mg = MgPatching {
            levels: 2,
            padding_fraction: 0.1,
        };
        let e = mg.patch(&field(1, [18, 16], 1)).unwrap_err().to_string();
        assert!(
            e.contains("multiples of 4") && e.contains("[18, 16]"),
            "{e}"
        );
        let e = mg
            .patch(&Tensor::<f64>::zeros(&[1, 16, 1]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[batch, n_1, n_2, channels]"), "{e}");
        let e = mg
            .stitch(&Tensor::<f64>::zeros(&[16, 5, 5, 1]), &[16, 16])
            .unwrap_err()
            .to_string();
        assert!(e.contains("patches of shape [k·16, 8, 8, channels]"), "{e}");
        let bad = MgPatching {
            levels: 1,
            padding_fraction: 0.7,
        };
        assert_eq!(bad.validate().unwrap_err().field, "padding_fraction");
    }
}
