//! Training losses.

use crate::tensor::{NnError, Real, Tensor};

/// Mean over the batch of `‖pred_b − target_b‖ / ‖target_b‖`, and its gradient in `pred`.
pub fn relative_l2<T: Real>(
    pred: &Tensor<T>,
    target: &Tensor<T>,
) -> Result<(f64, Tensor<T>), NnError> {
    if pred.shape != target.shape {
        return Err(NnError::Shape {
            layer: "relative L2 loss",
            expected: format!("a prediction of the target's shape {:?}", target.shape),
            got: format!("{:?}", pred.shape),
        });
    }
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
}
