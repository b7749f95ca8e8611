//! Adam and AdamW.

use crate::layers::Param;
use crate::tensor::{NnError, Real, PARALLEL_CHUNK};
use rayon::prelude::*;

/// Adam (`weight_decay` added to the gradient) or AdamW (`decoupled`: decay applied to the
/// weights directly, scaled by the learning rate).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct AdamParams {
    /// Adam's L2 penalty in the gradient, or AdamW's decoupled decay (`optimizer = "adamw"`).
    #[cfg_attr(
        feature = "serde",
        serde(rename = "optimizer", alias = "decoupled", with = "optimizer_name")
    )]
    pub decoupled: bool,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// `decoupled` written as `optimizer = "adam"` or `"adamw"` (checkpoints before the name held
/// the flag itself, `decoupled = true`).
#[cfg(feature = "serde")]
mod optimizer_name {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(decoupled: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *decoupled { "adamw" } else { "adam" })
    }

    struct Name;

    impl<'de> Visitor<'de> for Name {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("\"adam\" or \"adamw\"")
        }
        fn visit_bool<E: de::Error>(self, decoupled: bool) -> Result<bool, E> {
            Ok(decoupled)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "adam" => Ok(false),
                "adamw" => Ok(true),
                other => Err(de::Error::unknown_variant(other, &["adam", "adamw"])),
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(Name)
    }
}

impl AdamParams {
    pub fn validate(&self) -> Result<(), crate::param::InvalidParam> {
        use crate::param::require;
        let wd = self.weight_decay;
        require(
            (0.0..1.0).contains(&wd),
            "weight_decay",
            "a number in [0, 1)",
            wd,
        )?;
        for (field, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            require((0.0..1.0).contains(&b), field, "a number in [0, 1)", b)?;
        }
        require(self.eps > 0.0, "eps", "a positive number", self.eps)
    }
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

/// Adam's moments, one pair per parameter array, in the order the model lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam<T> {
    pub params: AdamParams,
    pub step: u64,
    pub m: Vec<Vec<T>>,
    pub v: Vec<Vec<T>>,
}

impl<T: Real> Adam<T> {
    pub fn new(params: AdamParams) -> Self {
        Self {
            params,
            step: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One update of every parameter from its accumulated gradient, at learning rate `lr`.
    pub fn update(&mut self, model: &mut [Param<'_, T>], lr: f64) -> Result<(), NnError> {
        if self.m.is_empty() {
            self.m = model
                .iter()
                .map(|p| vec![T::zero(); p.value.len()])
                .collect();
            self.v = self.m.clone();
        }
        if self.m.len() != model.len()
            || self
                .m
                .iter()
                .zip(model.iter())
                .any(|(m, p)| m.len() != p.value.len())
        {
            return Err(NnError::BadSpec {
                layer: "adam",
                message: "the optimiser state does not match the model's parameters".into(),
            });
        }
        self.step += 1;
        let p = self.params;
        let (b1, b2) = (T::lit(p.beta1), T::lit(p.beta2));
        let c1 = T::lit(1.0 - p.beta1.powi(self.step as i32));
        let c2 = T::lit(1.0 - p.beta2.powi(self.step as i32));
        let (lr_t, eps, wd) = (T::lit(lr), T::lit(p.eps), T::lit(p.weight_decay));
        let one = T::one();
        let (decoupled, decay) = (p.decoupled, p.weight_decay != 0.0);
        let update = |value: &mut [T], grad: &[T], m: &mut [T], v: &mut [T]| {
            for (((w, &g0), m), v) in value.iter_mut().zip(grad).zip(m).zip(v) {
                let g = if !decoupled && decay {
                    g0 + wd * *w
                } else {
                    g0
                };
                *m = b1 * *m + (one - b1) * g;
                *v = b2 * *v + (one - b2) * g * g;
                let step = (*m / c1) / ((*v / c2).sqrt() + eps);
                let w0 = if decoupled && decay {
                    *w - lr_t * wd * *w
                } else {
                    *w
                };
                *w = w0 - lr_t * step;
            }
        };
        for ((param, m), v) in model.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            param
                .value
                .par_chunks_mut(PARALLEL_CHUNK)
                .zip(param.grad.par_chunks(PARALLEL_CHUNK))
                .zip(m.par_chunks_mut(PARALLEL_CHUNK))
                .zip(v.par_chunks_mut(PARALLEL_CHUNK))
                .for_each(|(((w, g), m), v)| update(w, g, m, v));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Layer;
    use crate::models::fno::{Fno, FnoSpec, GridFrame};
    use crate::tensor::Tensor;
    use crate::train::loss::relative_l2;
    use rand::{Rng, SeedableRng};

    #[test]
    fn adam_and_adamw_match_hand_steps() {
        let mut w = vec![1.0f64];
        let mut g = vec![0.5f64];
        let mut adam = Adam::new(AdamParams::default());
        adam.update(
            &mut [Param {
                name: "w".into(),
                value: &mut w,
                grad: &mut g,
            }],
            0.1,
        )
        .unwrap();
        // The first Adam step moves by lr·sign(g).
        assert!((w[0] - 0.9).abs() < 1e-7);
        let mut w = vec![1.0f64];
        let mut g = vec![0.0f64];
        let mut adamw = Adam::new(AdamParams {
            weight_decay: 0.5,
            decoupled: true,
            ..AdamParams::default()
        });
        adamw
            .update(
                &mut [Param {
                    name: "w".into(),
                    value: &mut w,
                    grad: &mut g,
                }],
                0.1,
            )
            .unwrap();
        assert!((w[0] - 0.95).abs() < 1e-12);
    }

    #[test]
    fn a_tiny_fno_overfits_eight_samples() {
        // Learn the periodic smoothing u ↦ (1 − ∂²)⁻¹u on 32 points from 8 random fields.
        let n = 32;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..8 {
            let coef: Vec<(f64, f64)> = (1..=4)
                .map(|_| (rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)))
                .collect();
            for j in 0..n {
                let t = 2.0 * std::f64::consts::PI * j as f64 / n as f64;
                let (mut u, mut v) = (0.0, 0.0);
                for (k, (a, b)) in coef.iter().enumerate() {
                    let k = (k + 1) as f64;
                    let term = a * (k * t).cos() + b * (k * t).sin();
                    u += term;
                    v += term / (1.0 + k * k);
                }
                xs.push(u);
                ys.push(v);
            }
        }
        let x = Tensor::from_vec(&[8, n, 1], xs).unwrap();
        let y = Tensor::from_vec(&[8, n, 1], ys).unwrap();
        let mut fno = Fno::<f64>::new(FnoSpec {
            in_channels: 1,
            out_channels: 1,
            width: 8,
            modes: vec![6],
            layers: 2,
            frame: GridFrame::default(),
            factorization: crate::layers::factorized::Factorization::Dense,
            block: Default::default(),
            seed: 1,
        })
        .unwrap();
        let mut adam = Adam::new(AdamParams::default());
        let mut loss = f64::INFINITY;
        for _ in 0..1500 {
            fno.zero_grad();
            let pred = fno.forward(&x).unwrap();
            let (l, g) = relative_l2(&pred, &y).unwrap();
            loss = l;
            fno.backward(&g).unwrap();
            adam.update(&mut fno.parameters(), 3e-3).unwrap();
        }
        assert!(loss < 1e-2, "final relative L2 {loss:e}");
    }
}
