//! Orderings of a set of systems so that neighbours in the order are similar.
//!
//! * [`Ordering::Natural`]: as generated.
//! * [`Ordering::Greedy`]: the SKR paper's nearest-neighbour tour — start at system 0, always move
//!   to the nearest unvisited system. O(N²·d); right for N up to a few thousand.
//! * [`Ordering::PcaHilbert`]: for large N. Each field is reduced to its low Fourier modes, those
//!   to two principal components, and the systems are visited along a Hilbert curve through the
//!   PCA plane. O(N·d + N log N). We chose the Hilbert curve over the paper's Gray-code cell order
//!   because consecutive Hilbert cells are always adjacent, so the tour never jumps across the
//!   plane between cells (a Gray-code walk of a quantised plane does at every change of the high
//!   bit), and over a k-d tree tour because it needs no tuning and no tree.

use nalgebra::DMatrix;
use ndarray::ArrayView2;
use std::f64::consts::PI;

/// How the systems of a sequence are ordered before a recycling solver visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Ordering {
    #[default]
    Natural,
    Greedy,
    PcaHilbert,
}

/// The real and imaginary parts of the Fourier coefficients of `field` with |kx|, |ky| ≤ `modes`
/// (one of each conjugate pair), normalised by the number of points.
pub fn low_modes(field: ArrayView2<f64>, modes: usize) -> Vec<f64> {
    let (rows, cols) = field.dim();
    let k = modes as i64;
    let twiddles = |len: usize, kk: i64| -> Vec<(f64, f64)> {
        (0..len)
            .map(|p| {
                let t = -2.0 * PI * kk as f64 * p as f64 / len as f64;
                (t.cos(), t.sin())
            })
            .collect()
    };
    // Row transforms for ky in 0..=k, then column sums for kx in −k..=k.
    let mut row_coeffs: Vec<Vec<(f64, f64)>> = Vec::new();
    for ky in 0..=k {
        let tw = twiddles(cols, ky);
        row_coeffs.push(
            (0..rows)
                .map(|p| {
                    let mut acc = (0.0, 0.0);
                    for (q, (c, s)) in tw.iter().enumerate() {
                        let v = field[[p, q]];
                        acc.0 += v * c;
                        acc.1 += v * s;
                    }
                    acc
                })
                .collect(),
        );
    }
    let scale = 1.0 / (rows * cols) as f64;
    let mut out = Vec::new();
    for ky in 0..=k {
        for kx in -k..=k {
            if ky == 0 && kx < 0 {
                continue;
            }
            let tw = twiddles(rows, kx);
            let (mut re, mut im) = (0.0, 0.0);
            for (p, (c, s)) in tw.iter().enumerate() {
                let (a, b) = row_coeffs[ky as usize][p];
                re += a * c - b * s;
                im += a * s + b * c;
            }
            out.push(re * scale);
            out.push(im * scale);
        }
    }
    out
}

/// The visiting order of systems described by `features` (one vector per system, all the same
/// length).
pub fn order(features: &[Vec<f64>], how: Ordering) -> Vec<usize> {
    match how {
        Ordering::Natural => (0..features.len()).collect(),
        Ordering::Greedy => greedy(features),
        Ordering::PcaHilbert => pca_hilbert(features),
    }
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn greedy(features: &[Vec<f64>]) -> Vec<usize> {
    let n = features.len();
    let mut visited = vec![false; n];
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut current = 0;
    visited[0] = true;
    out.push(0);
    for _ in 1..n {
        let next = (0..n)
            .filter(|&j| !visited[j])
            .min_by(|&a, &b| {
                distance2(&features[current], &features[a])
                    .total_cmp(&distance2(&features[current], &features[b]))
            })
            .expect("an unvisited system remains");
        visited[next] = true;
        out.push(next);
        current = next;
    }
    out
}

/// Coordinates of the two leading principal components.
fn pca2(features: &[Vec<f64>]) -> Vec<(f64, f64)> {
    let n = features.len();
    let d = features.first().map_or(0, |f| f.len());
    let mut mean = vec![0.0; d];
    for f in features {
        for (m, v) in mean.iter_mut().zip(f) {
            *m += v / n as f64;
        }
    }
    let mut cov = DMatrix::<f64>::zeros(d, d);
    for f in features {
        let c: Vec<f64> = f.iter().zip(&mean).map(|(v, m)| v - m).collect();
        for i in 0..d {
            for j in 0..=i {
                cov[(i, j)] += c[i] * c[j];
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            cov[(j, i)] = cov[(i, j)];
        }
    }
    let eig = cov.symmetric_eigen();
    let mut idx: Vec<usize> = (0..d).collect();
    idx.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let axis = |k: usize| -> Vec<f64> {
        idx.get(k)
            .map(|&c| eig.eigenvectors.column(c).iter().copied().collect())
            .unwrap_or_else(|| vec![0.0; d])
    };
    let (a0, a1) = (axis(0), axis(1));
    features
        .iter()
        .map(|f| {
            let c: Vec<f64> = f.iter().zip(&mean).map(|(v, m)| v - m).collect();
            (
                c.iter().zip(&a0).map(|(x, y)| x * y).sum(),
                c.iter().zip(&a1).map(|(x, y)| x * y).sum(),
            )
        })
        .collect()
}

/// Index of cell (x, y) along the Hilbert curve filling a 2^order × 2^order square.
fn hilbert_index(order: u32, mut x: u64, mut y: u64) -> u64 {
    let side = 1u64 << order;
    let mut d = 0;
    let mut s = side / 2;
    while s > 0 {
        let rx = u64::from(x & s > 0);
        let ry = u64::from(y & s > 0);
        d += s * s * ((3 * rx) ^ ry);
        if ry == 0 {
            if rx == 1 {
                x = side - 1 - x;
                y = side - 1 - y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s /= 2;
    }
    d
}

fn pca_hilbert(features: &[Vec<f64>]) -> Vec<usize> {
    const ORDER: u32 = 16;
    let pts = pca2(features);
    let bounds = |sel: fn(&(f64, f64)) -> f64| {
        pts.iter()
            .map(sel)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
    };
    let (x0, x1) = bounds(|p| p.0);
    let (y0, y1) = bounds(|p| p.1);
    let cells = ((1u64 << ORDER) - 1) as f64;
    let quant = |v: f64, lo: f64, hi: f64| {
        if hi > lo {
            ((v - lo) / (hi - lo) * cells).round() as u64
        } else {
            0
        }
    };
    let mut keyed: Vec<(u64, usize)> = pts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                hilbert_index(ORDER, quant(p.0, x0, x1), quant(p.1, y0, y1)),
                i,
            )
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Total squared distance between consecutive systems of `order` (how "smooth" a tour is).
pub fn tour_length(features: &[Vec<f64>], order: &[usize]) -> f64 {
    order
        .windows(2)
        .map(|w| distance2(&features[w[0]], &features[w[1]]).sqrt())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn low_modes_find_a_single_fourier_mode() {
        let n = 16;
        let f = Array2::from_shape_fn((n, n), |(p, q)| {
            (2.0 * PI * (2.0 * p as f64 + q as f64) / n as f64).cos()
        });
        let m = low_modes(f.view(), 2);
        // Entries are ordered ky = 0 (kx = 0..=2), then ky = 1, 2 (kx = −2..=2).
        // cos(2π(2p + q)/n) has weight ½ at (kx, ky) = (2, 1).
        let idx = 3 + 4; // ky = 1 starts after 3 entries; kx = 2 is its 5th.
        assert!((m[2 * idx] - 0.5).abs() < 1e-12, "{m:?}");
        let total: f64 = m.iter().map(|v| v.abs()).sum();
        assert!((total - 0.5).abs() < 1e-12);
    }

    #[test]
    fn orderings_are_permutations_and_shorten_the_tour() {
        // Points on a noisy line in a 5-D feature space, presented shuffled.
        let n = 200;
        let features: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let t = ((i * 7919) % n) as f64 / n as f64;
                vec![t, 2.0 * t, -t, 0.01 * ((i % 3) as f64), 0.5 * t]
            })
            .collect();
        let natural = order(&features, Ordering::Natural);
        let natural_len = tour_length(&features, &natural);
        for how in [Ordering::Greedy, Ordering::PcaHilbert] {
            let o = order(&features, how);
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, natural, "{how:?} is a permutation");
            let len = tour_length(&features, &o);
            assert!(len < natural_len / 10.0, "{how:?}: {len} vs {natural_len}");
        }
    }

    #[test]
    fn hilbert_curve_visits_adjacent_cells() {
        let mut cells = vec![(0u64, 0u64); 64];
        for x in 0..8 {
            for y in 0..8 {
                cells[hilbert_index(3, x, y) as usize] = (x, y);
            }
        }
        for w in cells.windows(2) {
            assert_eq!(w[0].0.abs_diff(w[1].0) + w[0].1.abs_diff(w[1].1), 1);
        }
    }
}
