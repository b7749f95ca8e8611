//! Training losses.

use crate::tensor::{NnError, Real, Tensor};

fn same_shape<T: Real>(
    loss: &'static str,
    pred: &Tensor<T>,
    target: &Tensor<T>,
) -> Result<(), NnError> {
    if pred.shape != target.shape {
        return Err(NnError::Shape {
            layer: loss,
            expected: format!("a prediction of the target's shape {:?}", target.shape),
            got: format!("{:?}", pred.shape),
        });
    }
    Ok(())
}

/// Mean over the batch of `‖pred_b − target_b‖ / ‖target_b‖`, and its gradient in `pred`.
pub fn relative_l2<T: Real>(
    pred: &Tensor<T>,
    target: &Tensor<T>,
) -> Result<(f64, Tensor<T>), NnError> {
    same_shape("relative L2 loss", pred, target)?;
    let batch = pred.shape[0];
    let per = pred.data.len() / batch.max(1);
    let mut grad = Tensor::zeros(&pred.shape);
    let mut total = 0.0;
    for b in 0..batch {
        let (p, t) = (
            &pred.data[b * per..(b + 1) * per],
            &target.data[b * per..(b + 1) * per],
        );
        let diff: f64 = p
            .iter()
            .zip(t)
            .map(|(a, c)| (a.to_f64().unwrap_or(f64::NAN) - c.to_f64().unwrap_or(f64::NAN)).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = t
            .iter()
            .map(|c| c.to_f64().unwrap_or(f64::NAN).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = norm.max(f64::MIN_POSITIVE);
        total += diff / norm;
        if diff > 0.0 {
            let s = 1.0 / (diff * norm * batch as f64);
            for ((g, a), c) in grad.data[b * per..(b + 1) * per].iter_mut().zip(p).zip(t) {
                *g = (*a - *c) * T::lit(s);
            }
        }
    }
    Ok((total / batch as f64, grad))
}

/// Squared H1 seminorm-plus-norm of one sample `e` (grid `dims`, `c` channels, channels last),
/// with forward differences scaled by `n_k` (unit domain), and its gradient `2e + Σ_k 2D_kᵀD_k e`
/// added to `grad` when given.
fn h1_squared<T: Real>(e: &[T], dims: &[usize], c: usize, mut grad: Option<&mut [T]>) -> f64 {
    let mut total: f64 = e
        .iter()
        .map(|v| v.to_f64().unwrap_or(f64::NAN).powi(2))
        .sum();
    if let Some(g) = grad.as_deref_mut() {
        for (gi, v) in g.iter_mut().zip(e) {
            *gi = *gi + T::lit(2.0) * *v;
        }
    }
    let points: usize = dims.iter().product();
    for (k, &n) in dims.iter().enumerate() {
        let stride: usize = dims[k + 1..].iter().product::<usize>() * c;
        let scale = n as f64;
        for p in 0..points {
            let idx = (p / dims[k + 1..].iter().product::<usize>()) % n;
            if idx + 1 == n {
                continue;
            }
            for ch in 0..c {
                let a = p * c + ch;
                let b = a + stride;
                let d = (e[b] - e[a]).to_f64().unwrap_or(f64::NAN) * scale;
                total += d * d;
                if let Some(g) = grad.as_deref_mut() {
                    let w = T::lit(2.0 * d * scale);
                    g[b] = g[b] + w;
                    g[a] = g[a] - w;
                }
            }
        }
    }
    total
}

/// Mean over the batch of the relative H1 error `‖pred_b − target_b‖_H1 / ‖target_b‖_H1`, with
/// `‖w‖²_H1 = Σ w² + Σ_k Σ (n_k Δ_k w)²` (forward differences on the unit domain, no wrap-around),
/// and its gradient in `pred`.
pub fn relative_h1<T: Real>(
    pred: &Tensor<T>,
    target: &Tensor<T>,
) -> Result<(f64, Tensor<T>), NnError> {
    same_shape("relative H1 loss", pred, target)?;
    let batch = pred.shape[0];
    let dims = pred.grid().to_vec();
    let c = pred.channels();
    let per = pred.data.len() / batch.max(1);
    let mut grad = Tensor::zeros(&pred.shape);
    let mut total = 0.0;
    let mut diff = vec![T::zero(); per];
    let mut g = vec![T::zero(); per];
    for b in 0..batch {
        let range = b * per..(b + 1) * per;
        for ((d, p), t) in diff
            .iter_mut()
            .zip(&pred.data[range.clone()])
            .zip(&target.data[range.clone()])
        {
            *d = *p - *t;
        }
        g.iter_mut().for_each(|v| *v = T::zero());
        let e2 = h1_squared(&diff, &dims, c, Some(&mut g));
        let t2 = h1_squared(&target.data[range.clone()], &dims, c, None).max(f64::MIN_POSITIVE);
        let r = (e2 / t2).sqrt();
        total += r;
        if r > 0.0 {
            let s = T::lit(1.0 / (2.0 * r * t2 * batch as f64));
            for (out, v) in grad.data[range].iter_mut().zip(&g) {
                *out = *v * s;
            }
        }
    }
    Ok((total / batch as f64, grad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_l2_matches_a_hand_computation_and_its_gradient_differences() {
        let target = Tensor::from_vec(&[2, 2, 1], vec![3.0, 4.0, 1.0, 0.0]).unwrap();
        let pred = Tensor::from_vec(&[2, 2, 1], vec![3.0, 5.0, 0.0, 0.0]).unwrap();
        // Sample 0: 1/5; sample 1: 1/1.
        let (loss, grad) = relative_l2(&pred, &target).unwrap();
        assert!((loss - 0.6).abs() < 1e-15);
        let eps = 1e-7;
        for i in 0..4 {
            let mut p = pred.clone();
            p.data[i] += eps;
            let fd = (relative_l2(&p, &target).unwrap().0 - loss) / eps;
            assert!(
                (fd - grad.data[i]).abs() < 1e-6,
                "{i}: {fd} vs {}",
                grad.data[i]
            );
        }
        assert!(relative_l2(&pred, &Tensor::<f64>::zeros(&[2, 4, 1])).is_err());
    }

    #[test]
    fn relative_h1_matches_a_hand_computation_and_its_gradient_differences() {
        // One 1-D sample of 2 points: target (1, 3): ‖t‖² = 1 + 9 + (2·2)² = 26; error (0, 1):
        // 1 + (2·1)² = 5.
        let target = Tensor::from_vec(&[1, 2, 1], vec![1.0, 3.0]).unwrap();
        let pred = Tensor::from_vec(&[1, 2, 1], vec![1.0, 4.0]).unwrap();
        let (loss, _) = relative_h1(&pred, &target).unwrap();
        assert!((loss - (5.0f64 / 26.0).sqrt()).abs() < 1e-15);
        // Gradient against central differences on a 2-D, 2-channel batch.
        let t = crate::layers::gradcheck::random(&[2, 3, 4, 2], 1);
        let p = crate::layers::gradcheck::random(&[2, 3, 4, 2], 2);
        let (l0, g) = relative_h1(&p, &t).unwrap();
        let eps = 1e-6;
        for i in 0..p.data.len() {
            let mut a = p.clone();
            a.data[i] += eps;
            let mut b = p.clone();
            b.data[i] -= eps;
            let fd =
                (relative_h1(&a, &t).unwrap().0 - relative_h1(&b, &t).unwrap().0) / (2.0 * eps);
            assert!(
                (fd - g.data[i]).abs() < 1e-7 * (1.0 + l0),
                "{i}: {fd} vs {}",
                g.data[i]
            );
        }
    }
}
