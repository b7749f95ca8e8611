//! Online policies that choose the relaxation parameter ω from a grid of arms, seeing only costs.
//!
//! Costs are iteration counts; learners turn them into losses in [0, 1] by dividing by an iteration
//! cap. Every learner draws from its own seeded RNG, so a run is reproducible.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// Chooses ω for each instance of a sequence and learns from the cost it then pays.
pub trait OmegaPolicy: Send {
    fn name(&self) -> String;
    /// ω for the next instance, given its context (ignored by non-contextual policies).
    fn choose(&mut self, context: f64) -> f64;
    /// The cost (iterations) of the oldest choice not yet observed. Feedback may be delayed: a
    /// caller can choose ω for several instances, solve them, then observe their costs in order.
    fn observe(&mut self, cost: f64);
    /// The current sampling distribution over the arms, where the policy has one (for the last
    /// context seen, for contextual policies).
    fn probabilities(&self) -> Option<Vec<f64>> {
        None
    }
}

/// `count` values evenly spaced from `lo` to `hi` inclusive (the arms).
pub fn linspace(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if count == 1 {
        return vec![lo];
    }
    (0..count)
        .map(|i| lo + (hi - lo) * i as f64 / (count - 1) as f64)
        .collect()
}

/// Always the same ω.
#[derive(Debug, Clone)]
pub struct FixedOmega {
    pub omega: f64,
}

impl OmegaPolicy for FixedOmega {
    fn name(&self) -> String {
        format!("fixed ω = {:.3}", self.omega)
    }
    fn choose(&mut self, _: f64) -> f64 {
        self.omega
    }
    fn observe(&mut self, _: f64) {}
}

/// ½-Tsallis-INF (Zimmert & Seldin 2021) over a grid of arms, learning rate η_t = c/√t (c = 2 in
/// the paper), with importance-weighted estimates of the loss `min(cost, scale)/scale`.
#[derive(Debug, Clone)]
pub struct TsallisInf {
    arms: Vec<f64>,
    cap: f64,
    rate: f64,
    /// Cumulative estimated losses L̂.
    cum_loss: Vec<f64>,
    probs: Vec<f64>,
    t: u64,
    /// Choices awaiting their cost: the arm and its probability when chosen.
    pending: VecDeque<(usize, f64)>,
    rng: ChaCha8Rng,
}

/// The learning-rate constant c of η_t = c/√t in Zimmert & Seldin's Tsallis-INF.
pub const TSALLIS_RATE: f64 = 2.0;

impl TsallisInf {
    /// A learner over `arms`; costs are normalised by `scale` (and clipped to it), η_t = rate/√t.
    pub fn new(arms: Vec<f64>, scale: f64, rate: f64, seed: u64) -> Self {
        let k = arms.len();
        Self {
            arms,
            cap: scale,
            rate,
            cum_loss: vec![0.0; k],
            probs: vec![1.0 / k as f64; k],
            t: 0,
            pending: VecDeque::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// `p_i = 4 / (η (L̂_i − x))²`, with the normaliser `x < min L̂` found by Newton's method (the
    /// sum is convex and increasing in x, so Newton from below converges monotonically).
    fn update_probabilities(&mut self, eta: f64) {
        let min = self.cum_loss.iter().copied().fold(f64::INFINITY, f64::min);
        // At x = min − 2/η the best arm alone has weight 1, so the sum is ≥ 1: Newton from there
        // moves left and stays right of the root.
        let mut x = min - 2.0 / eta;
        for _ in 0..100 {
            let (mut sum, mut slope) = (0.0, 0.0);
            for &l in &self.cum_loss {
                let w = 4.0 / (eta * (l - x)).powi(2);
                sum += w;
                slope += eta * w.powf(1.5);
            }
            let step = (sum - 1.0) / slope;
            x -= step;
            if step.abs() < 1e-12 * (1.0 + x.abs()) {
                break;
            }
        }
        let mut total = 0.0;
        for (p, &l) in self.probs.iter_mut().zip(&self.cum_loss) {
            *p = 4.0 / (eta * (l - x)).powi(2);
            total += *p;
        }
        // Newton leaves the sum within rounding of 1; renormalise so it is exactly a distribution.
        for p in &mut self.probs {
            *p /= total;
        }
    }

    fn sample(&mut self) -> usize {
        let u: f64 = self.rng.gen();
        let mut acc = 0.0;
        for (i, &p) in self.probs.iter().enumerate() {
            acc += p;
            if u < acc {
                return i;
            }
        }
        self.probs.len() - 1
    }
}

impl OmegaPolicy for TsallisInf {
    fn name(&self) -> String {
        "Tsallis-INF".into()
    }

    fn choose(&mut self, _: f64) -> f64 {
        self.t += 1;
        let eta = self.rate / (self.t as f64).sqrt();
        self.update_probabilities(eta);
        let i = self.sample();
        self.pending.push_back((i, self.probs[i]));
        self.arms[i]
    }

    fn observe(&mut self, cost: f64) {
        if let Some((i, p)) = self.pending.pop_front() {
            let loss = cost.min(self.cap) / self.cap;
            self.cum_loss[i] += loss / p;
        }
    }

    fn probabilities(&self) -> Option<Vec<f64>> {
        Some(self.probs.clone())
    }
}

/// One Tsallis-INF learner per bin of the context range.
#[derive(Debug, Clone)]
pub struct BinnedTsallisInf {
    range: (f64, f64),
    bins: Vec<TsallisInf>,
    last_bin: usize,
    /// Bins of the choices awaiting their cost.
    pending: VecDeque<usize>,
}

impl BinnedTsallisInf {
    pub fn new(
        arms: Vec<f64>,
        scale: f64,
        rate: f64,
        range: (f64, f64),
        bins: usize,
        seed: u64,
    ) -> Self {
        let bins = (0..bins)
            .map(|b| {
                TsallisInf::new(
                    arms.clone(),
                    scale,
                    rate,
                    seed.wrapping_mul(1000).wrapping_add(b as u64),
                )
            })
            .collect();
        Self {
            range,
            bins,
            last_bin: 0,
            pending: VecDeque::new(),
        }
    }

    /// The bin of `context`; contexts outside the range go to the end bins.
    pub fn bin_of(&self, context: f64) -> usize {
        let (lo, hi) = self.range;
        let f = ((context - lo) / (hi - lo)).clamp(0.0, 1.0);
        ((f * self.bins.len() as f64) as usize).min(self.bins.len() - 1)
    }

    /// The current distribution of bin `b`.
    pub fn bin_probabilities(&self, b: usize) -> Vec<f64> {
        self.bins[b].probs.clone()
    }
}

impl OmegaPolicy for BinnedTsallisInf {
    fn name(&self) -> String {
        format!("binned Tsallis-INF ({} bins)", self.bins.len())
    }

    fn choose(&mut self, context: f64) -> f64 {
        self.last_bin = self.bin_of(context);
        self.pending.push_back(self.last_bin);
        self.bins[self.last_bin].choose(context)
    }

    fn observe(&mut self, cost: f64) {
        if let Some(b) = self.pending.pop_front() {
            self.bins[b].observe(cost);
        }
    }

    fn probabilities(&self) -> Option<Vec<f64>> {
        Some(self.bins[self.last_bin].probs.clone())
    }
}

/// Contextual regression: for each arm, the loss is modelled as a Chebyshev series of degree `d` in
/// the context (ridge least squares on that arm's observations); arms are drawn by inverse-gap
/// weighting (SquareCB, Foster & Rakhlin 2020): `p_a = 1/(K + γ (ŷ_a − ŷ_best))`, the rest on the
/// best arm, with `γ = γ₀ √t`. Losses are `min(cost, scale)/scale`.
#[derive(Debug, Clone)]
pub struct ChebyshevRegression {
    arms: Vec<f64>,
    cap: f64,
    range: (f64, f64),
    degree: usize,
    gamma0: f64,
    ridge: f64,
    /// Per arm: the Gram matrix ΦᵀΦ (row-major, (d+1)²) and Φᵀy.
    gram: Vec<Vec<f64>>,
    moment: Vec<Vec<f64>>,
    probs: Vec<f64>,
    t: u64,
    /// Choices awaiting their cost: the arm and the context features.
    pending: VecDeque<(usize, Vec<f64>)>,
    rng: ChaCha8Rng,
}

impl ChebyshevRegression {
    pub fn new(
        arms: Vec<f64>,
        scale: f64,
        range: (f64, f64),
        degree: usize,
        gamma0: f64,
        seed: u64,
    ) -> Self {
        let k = arms.len();
        let m = degree + 1;
        let ridge = 1e-3;
        let mut gram = vec![vec![0.0; m * m]; k];
        for g in &mut gram {
            for i in 0..m {
                g[i * m + i] = ridge;
            }
        }
        Self {
            arms,
            cap: scale,
            range,
            degree,
            gamma0,
            ridge,
            gram,
            moment: vec![vec![0.0; m]; k],
            probs: vec![1.0 / k as f64; k],
            t: 0,
            pending: VecDeque::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Chebyshev polynomials T_0..T_d at the context mapped to [−1, 1].
    fn features(&self, context: f64) -> Vec<f64> {
        let (lo, hi) = self.range;
        let s = (2.0 * (context - lo) / (hi - lo) - 1.0).clamp(-1.0, 1.0);
        let mut f = vec![1.0; self.degree + 1];
        if self.degree >= 1 {
            f[1] = s;
        }
        for k in 2..=self.degree {
            f[k] = 2.0 * s * f[k - 1] - f[k - 2];
        }
        f
    }

    /// Predicted loss of arm `a` at features `phi`; an arm never tried predicts 0 (optimism).
    fn predict(&self, a: usize, phi: &[f64]) -> f64 {
        let m = phi.len();
        // Solve (ΦᵀΦ) w = Φᵀy by Cholesky; m ≤ 8, so this is a few dozen flops.
        let mut l = self.gram[a].clone();
        for j in 0..m {
            let mut d = l[j * m + j];
            for k in 0..j {
                d -= l[j * m + k] * l[j * m + k];
            }
            let d = d.max(self.ridge * 1e-6).sqrt();
            l[j * m + j] = d;
            for i in j + 1..m {
                let mut s = l[i * m + j];
                for k in 0..j {
                    s -= l[i * m + k] * l[j * m + k];
                }
                l[i * m + j] = s / d;
            }
        }
        let mut y = self.moment[a].clone();
        for i in 0..m {
            for k in 0..i {
                y[i] -= l[i * m + k] * y[k];
            }
            y[i] /= l[i * m + i];
        }
        for i in (0..m).rev() {
            for k in i + 1..m {
                y[i] -= l[k * m + i] * y[k];
            }
            y[i] /= l[i * m + i];
        }
        y.iter().zip(phi).map(|(w, f)| w * f).sum()
    }
}

impl OmegaPolicy for ChebyshevRegression {
    fn name(&self) -> String {
        format!("Chebyshev regression (degree {})", self.degree)
    }

    fn choose(&mut self, context: f64) -> f64 {
        self.t += 1;
        let phi = self.features(context);
        let k = self.arms.len();
        let preds: Vec<f64> = (0..k).map(|a| self.predict(a, &phi)).collect();
        let best = preds
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        let gamma = self.gamma0 * (self.t as f64).sqrt();
        let mut rest = 0.0;
        for a in 0..k {
            if a != best {
                self.probs[a] = 1.0 / (k as f64 + gamma * (preds[a] - preds[best]));
                rest += self.probs[a];
            }
        }
        self.probs[best] = 1.0 - rest;
        let u: f64 = self.rng.gen();
        let mut acc = 0.0;
        let mut choice = k - 1;
        for (a, &p) in self.probs.iter().enumerate() {
            acc += p;
            if u < acc {
                choice = a;
                break;
            }
        }
        self.pending.push_back((choice, phi));
        self.arms[choice]
    }

    fn observe(&mut self, cost: f64) {
        if let Some((a, phi)) = self.pending.pop_front() {
            let loss = cost.min(self.cap) / self.cap;
            let m = phi.len();
            for i in 0..m {
                self.moment[a][i] += phi[i] * loss;
                for j in 0..m {
                    self.gram[a][i * m + j] += phi[i] * phi[j];
                }
            }
        }
    }

    fn probabilities(&self) -> Option<Vec<f64>> {
        Some(self.probs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Bernoulli, Distribution};

    /// A synthetic Bernoulli bandit with known means: the distribution stays a probability vector
    /// and concentrates on the best arm.
    #[test]
    fn tsallis_inf_concentrates_on_the_best_arm_of_a_synthetic_bandit() {
        let means = [0.7, 0.5, 0.3, 0.6, 0.65];
        let arms: Vec<f64> = (0..means.len()).map(|i| i as f64).collect();
        let mut learner = TsallisInf::new(arms, 1.0, TSALLIS_RATE, 4);
        let mut env = ChaCha8Rng::seed_from_u64(9);
        let mut picks_best_late = 0;
        for t in 0..20_000 {
            let arm = learner.choose(0.0) as usize;
            let p = learner.probabilities().unwrap();
            let sum: f64 = p.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-9 && p.iter().all(|&q| (0.0..=1.0).contains(&q)),
                "t = {t}: {p:?}"
            );
            let cost = f64::from(u8::from(
                Bernoulli::new(means[arm]).unwrap().sample(&mut env),
            ));
            learner.observe(cost);
            if t >= 15_000 && arm == 2 {
                picks_best_late += 1;
            }
        }
        let p = learner.probabilities().unwrap();
        assert!(p[2] > 0.9, "final distribution {p:?}");
        assert!(
            picks_best_late > 4_000,
            "best arm picked {picks_best_late} times of the last 5000"
        );
    }

    /// Two context bins whose best arms differ: each bin's learner settles on its own best arm.
    #[test]
    fn binned_learners_choose_different_arms_in_bins_whose_best_arms_differ() {
        let arms = vec![1.0, 1.5, 1.9];
        let mut learner = BinnedTsallisInf::new(arms, 100.0, TSALLIS_RATE, (0.0, 1.0), 2, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20_000 {
            let c: f64 = rng.gen();
            let omega = learner.choose(c);
            // Low contexts favour ω = 1.0, high contexts ω = 1.9.
            let best = if c < 0.5 { 1.0 } else { 1.9 };
            learner.observe(20.0 + 60.0 * (omega - best).abs());
        }
        let low = learner.bin_probabilities(learner.bin_of(0.1));
        let high = learner.bin_probabilities(learner.bin_of(0.9));
        assert!(
            low[0] > 0.8 && high[2] > 0.8,
            "low bin {low:?}, high bin {high:?}"
        );
    }

    #[test]
    fn chebyshev_regression_learns_a_context_dependent_best_arm() {
        let arms = vec![1.0, 1.5, 1.9];
        let mut learner = ChebyshevRegression::new(arms, 100.0, (0.0, 1.0), 2, 10.0, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut late_regret = 0.0;
        for t in 0..5_000 {
            let c: f64 = rng.gen();
            let omega = learner.choose(c);
            let best = 1.0 + 0.9 * c;
            let cost = 20.0 + 60.0 * (omega - best).abs();
            learner.observe(cost);
            if t >= 4_000 {
                let best_arm_cost = [1.0, 1.5, 1.9]
                    .iter()
                    .map(|w| 20.0 + 60.0 * (w - best).abs())
                    .fold(f64::INFINITY, f64::min);
                late_regret += cost - best_arm_cost;
            }
        }
        // A learner blind to the context would pay ≈ 12 per round over the best fixed arm here.
        assert!(
            late_regret / 1000.0 < 4.0,
            "mean late regret {}",
            late_regret / 1000.0
        );
    }

    /// Choosing a batch before observing it charges each cost to the arm that earned it.
    #[test]
    fn delayed_feedback_is_matched_to_its_choices_in_order() {
        let arms = vec![0.0, 1.0, 2.0];
        let mut learner = TsallisInf::new(arms, 10.0, TSALLIS_RATE, 1);
        for _ in 0..3000 {
            let batch: Vec<f64> = (0..4).map(|_| learner.choose(0.0)).collect();
            // Arm 1 costs 1, the others 9.
            for w in batch {
                learner.observe(if w == 1.0 { 1.0 } else { 9.0 });
            }
        }
        let p = learner.probabilities().unwrap();
        assert!(p[1] > 0.9, "{p:?}");
        assert!(learner.pending.is_empty());
    }

    #[test]
    fn linspace_matches_the_default_arm_grid() {
        let arms = linspace(1.0, 1.95, 20);
        assert_eq!(arms.len(), 20);
        assert!((arms[1] - 1.05).abs() < 1e-12 && (arms[19] - 1.95).abs() < 1e-12);
    }
}
