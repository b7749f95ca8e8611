//! A small L-BFGS minimiser with a backtracking (Armijo) line search, for the few smooth
//! hyper-parameters of a GP. An objective may answer `None` at a point where it is not defined
//! (e.g. a kernel matrix that is not positive definite); the line search then steps back.

/// What the minimiser did.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LbfgsReport {
    pub iterations: usize,
    pub evaluations: usize,
    /// The objective at the returned point.
    pub value: f64,
    /// The gradient's largest entry at the returned point.
    pub gradient_max: f64,
    /// Stopped by the gradient or the relative-decrease test, not by the iteration limit or a
    /// failed line search.
    pub converged: bool,
    /// Stopped by the caller.
    pub stopped: bool,
}

/// Minimises `f` from `x` (updated in place) for at most `max_iterations` steps, stopping when the
/// gradient's largest entry is below `gtol` or an iteration lowers `f` by less than `ftol`·|f|.
/// `each` sees every accepted iterate's number and value, and stops the search by returning
/// `false` (the report then says `stopped`). Returns `None` when `f` is undefined at the start.
pub fn minimize(
    x: &mut [f64],
    mut f: impl FnMut(&[f64]) -> Option<(f64, Vec<f64>)>,
    max_iterations: usize,
    gtol: f64,
    ftol: f64,
    mut each: impl FnMut(usize, f64) -> bool,
) -> Option<LbfgsReport> {
    const MEMORY: usize = 8;
    let n = x.len();
    let (mut fx, mut g) = f(x)?;
    let mut evaluations = 1;
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let gmax = |g: &[f64]| g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut converged = gmax(&g) < gtol;
    let mut iterations = 0;
    let mut stopped = false;
    let mut trial = vec![0.0; n];
    while !converged && iterations < max_iterations {
        // Two-loop recursion: d = −H g.
        let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut rho_alpha = Vec::with_capacity(s_hist.len());
        for (s, y) in s_hist.iter().zip(&y_hist).rev() {
            let rho = 1.0 / dot(y, s);
            let a = rho * dot(s, &d);
            axpy(-a, y, &mut d);
            rho_alpha.push((rho, a));
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|v| *v *= gamma);
        } else {
            // First step: at most a unit move in the largest coordinate.
            let scale = 1.0 / gmax(&g).max(1.0);
            d.iter_mut().for_each(|v| *v *= scale);
        }
        for ((s, y), (rho, a)) in s_hist.iter().zip(&y_hist).zip(rho_alpha.into_iter().rev()) {
            let b = rho * dot(y, &d);
            axpy(a - b, s, &mut d);
        }
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (curvature went wrong): restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            let scale = 1.0 / gmax(&g).max(1.0);
            d = g.iter().map(|v| -v * scale).collect();
            slope = dot(&g, &d);
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..30 {
            for i in 0..n {
                trial[i] = x[i] + step * d[i];
            }
            evaluations += 1;
            if let Some((ft, gt)) = f(&trial) {
                if ft.is_finite() && ft <= fx + 1e-4 * step * slope {
                    accepted = Some((ft, gt));
                    break;
                }
            }
            step *= 0.5;
        }
        let Some((ft, gt)) = accepted else {
            break;
        };
        iterations += 1;
        let s: Vec<f64> = (0..n).map(|i| trial[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| gt[i] - g[i]).collect();
        if dot(&s, &y) > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if s_hist.len() == MEMORY {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
        }
        let decrease = fx - ft;
        x.copy_from_slice(&trial);
        fx = ft;
        g = gt;
        if !each(iterations, fx) {
            stopped = true;
            break;
        }
        converged = gmax(&g) < gtol || decrease <= ftol * fx.abs().max(1.0);
    }
    Some(LbfgsReport {
        iterations,
        evaluations,
        value: fx,
        gradient_max: gmax(&g),
        converged,
        stopped,
    })
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_the_rosenbrock_function_and_steps_back_from_undefined_points() {
        let mut x = vec![-1.2, 1.0];
        let rosen = |x: &[f64]| {
            // Undefined beyond x₀ = 1.5: the search must step back.
            if x[0] > 1.5 {
                return None;
            }
            let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
            Some((
                a * a + 100.0 * b * b,
                vec![-2.0 * a - 400.0 * x[0] * b, 200.0 * b],
            ))
        };
        let r = minimize(&mut x, rosen, 200, 1e-8, 0.0, |_, _| true).unwrap();
        assert!(r.converged, "{r:?}");
        assert!(
            (x[0] - 1.0).abs() < 1e-6 && (x[1] - 1.0).abs() < 1e-6,
            "{x:?}"
        );
    }
}
