//! `pdekit bench train`: the cost of one training step (forward, relative L2 loss, backward, Adam
//! update) in f32 on random data, and the memory it holds, optionally beside the same model in
//! PyTorch: an FNO (`--width`, `--modes`, `--layers`) against `bench/peers/fno_torch.py`, or any
//! model of a config's `[train.<model>]` table (`--config`); a TFNO or MG-TFNO against
//! neuraloperator's in `bench/peers/mgtfno_torch.py`, a FactFormer against the PyTorch mirror in
//! `bench/peers/factformer_torch.py`.

use super::stamp;
use crate::config::bench::RESULTS_DIR;
use crate::meta::{peak_rss_mib, reset_peak_rss, rss_mib};
use crate::progress::Reporter;
use crate::PdekitError;
use pdekit_operators::layers::factorized::{Factorization, Rank};
use pdekit_operators::layers::Layer;
use pdekit_operators::models::fno::{FnoSpec, GridFrame};
use pdekit_operators::models::{Model, ModelSpec};
use pdekit_operators::tensor::{NnError, Tensor};
use pdekit_operators::train::loss::relative_l2;
use pdekit_operators::train::optim::{Adam, AdamParams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The benchmark's model and data sizes.
#[derive(Debug, Clone)]
pub struct TrainBench {
    /// One input and one output channel.
    pub spec: ModelSpec,
    pub grid: Vec<usize>,
    pub batch: usize,
    pub steps: usize,
}

/// The FNO of `--width`, `--modes` and `--layers`.
pub fn fno_spec(width: usize, modes: Vec<usize>, layers: usize) -> ModelSpec {
    ModelSpec::Fno(FnoSpec {
        in_channels: 1,
        out_channels: 1,
        width,
        modes,
        layers,
        frame: GridFrame::default(),
        factorization: Factorization::Dense,
        block: Default::default(),
        seed: 0,
    })
}

/// The model of a config's `[train.<model>]` table, with one input and one output channel.
pub fn config_spec(config: &Path) -> Result<ModelSpec, PdekitError> {
    let plan = crate::config::Plan::load(config)?;
    let train = plan.train.as_ref().ok_or_else(|| {
        PdekitError::Usage(format!(
            "{}: the config has no [train] section",
            config.display()
        ))
    })?;
    let crate::config::train::Learner::Neural(neural) = &train.learner else {
        return Err(PdekitError::Usage(format!(
            "{}: [train.gp] is timed by `pdekit bench gp-operator`",
            config.display()
        )));
    };
    neural
        .model
        .spec(pdekit_operators::models::Io {
            in_channels: 1,
            out_channels: 1,
            seed: neural.params.seed,
        })
        .map_err(|e| {
            PdekitError::Usage(format!("{}: {}: {e}", config.display(), train.model_key()))
        })
}

pub struct Outcome {
    pub table: String,
    pub json: PathBuf,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

pub fn run(
    b: &TrainBench,
    reporter: &Reporter,
    python: Option<&Path>,
) -> Result<Outcome, PdekitError> {
    if b.spec.dims() != b.grid.len() {
        return Err(PdekitError::Usage(format!(
            "the {} has modes for {} axes but --grid gives {}",
            b.spec.name(),
            b.spec.dims(),
            b.grid.len()
        )));
    }
    if b.steps == 0 || b.batch == 0 {
        return Err(PdekitError::Usage(
            "--steps and --batch must be at least 1".into(),
        ));
    }
    crate::meta::model_fits_in_memory(&b.spec).map_err(PdekitError::Usage)?;
    let usage = |e: NnError| PdekitError::Usage(e.to_string());
    let mut model = Model::<f32>::new(b.spec.clone()).map_err(usage)?;
    let mut shape = vec![b.batch];
    shape.extend(&b.grid);
    shape.push(1);
    let n: usize = shape.iter().product();
    // Fixed pseudo-random data in [0, 1) (the step's cost does not depend on the values).
    let draw = |a: f64| -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f64 + 1.0) * a).fract() as f32)
            .collect()
    };
    let x = Tensor::from_vec(&shape, draw(0.618_033_988_749_9)).map_err(usage)?;
    let y = Tensor::from_vec(&shape, draw(0.414_213_562_373_1)).map_err(usage)?;
    let mut adam = Adam::new(AdamParams::default());
    let warmup = 3;
    let bar = reporter.bar((warmup + b.steps) as u64, "bench train", "steps");
    let (mut step, mut fb) = (Vec::new(), Vec::new());
    let mut rss_after_warmup = None;
    let mut rss_per_step = Vec::new();
    // What is resident before the first step (weights, data, the process): the steps' peak
    // above it is what a step holds.
    let peak_is_steps = reset_peak_rss();
    let rss_before_steps = rss_mib();
    for i in 0..warmup + b.steps {
        if i == warmup {
            rss_after_warmup = rss_mib();
        }
        let t = Instant::now();
        model.zero_grad();
        let pred = model.forward(&x).map_err(usage)?;
        let (_, grad) = relative_l2(&pred, &y).map_err(usage)?;
        model.backward(&grad).map_err(usage)?;
        let t_fb = t.elapsed().as_secs_f64();
        adam.update(&mut model.parameters(), 1e-3).map_err(usage)?;
        if i >= warmup {
            step.push(t.elapsed().as_secs_f64());
            fb.push(t_fb);
            rss_per_step.extend(rss_mib());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let step_peak = peak_rss_mib().filter(|_| peak_is_steps);
    let rss_at_end = rss_mib();
    let rss_half_way = rss_per_step.get(rss_per_step.len() / 2).copied();
    let step_min = step.iter().copied().fold(f64::INFINITY, f64::min);
    let (step_med, fb_med) = (median(&mut step), median(&mut fb));
    let params = model.parameter_count();
    let peer = match python {
        None => None,
        Some(py) => Some(run_peer(py, b, reporter)?),
    };
    // The peer's model: neuraloperator's, or the PyTorch mirror where neuraloperator has none.
    let torch_med = peer
        .as_ref()
        .and_then(|p| p["models"].as_object().cloned())
        .and_then(|models| {
            models
                .iter()
                .find(|(name, _)| name.starts_with("neuraloperator") || name.starts_with("mirror"))
                .and_then(|(_, m)| m["step_seconds_median"].as_f64())
        });
    let mut table = format!(
        "{}, grid {:?}, batch {}, {} parameters, {} threads:\n  pdekit: {:.1} ms per training step (median of {}; min {:.1}), forward+backward {:.1} ms\n  memory: {} MiB resident before the steps, {} MiB at the steps' peak; {} MiB after warm-up, {} MiB half-way, {} MiB at the end",
        describe(&b.spec),
        b.grid,
        b.batch,
        params,
        rayon::current_num_threads(),
        1e3 * step_med,
        b.steps,
        1e3 * step_min,
        1e3 * fb_med,
        mib(rss_before_steps),
        mib(step_peak),
        mib(rss_after_warmup),
        mib(rss_half_way),
        mib(rss_at_end),
    );
    if let Some(p) = &peer {
        for (name, m) in p["models"].as_object().into_iter().flatten() {
            if let Some(s) = m["step_seconds_median"].as_f64() {
                table.push_str(&format!(
                    "\n  PyTorch {} ({name}): {:.1} ms per step ({} parameters){}",
                    p["torch"].as_str().unwrap_or("?"),
                    1e3 * s,
                    m["parameters"],
                    m["step_peak_rss_mib"]
                        .as_f64()
                        .map_or(String::new(), |v| format!(
                            ", {v:.0} MiB at the steps' peak ({:.0} MiB before)",
                            m["rss_before_steps_mib"].as_f64().unwrap_or(f64::NAN)
                        ))
                ));
            }
        }
        if let Some(t) = torch_med {
            table.push_str(&format!(
                "\n  pdekit / PyTorch step time: {:.2}",
                step_med / t
            ));
        }
    }
    let mut doc = json!({
        "benchmark": "train",
        "threads": rayon::current_num_threads(),
        "model": {"spec": b.spec, "parameters": params},
        "grid": b.grid,
        "batch": b.batch,
        "precision": "f32",
        "timed_steps": b.steps,
        "warmup_steps": warmup,
        "step_seconds_median": step_med,
        "step_seconds_min": step_min,
        "forward_backward_seconds_median": fb_med,
        "rss_before_steps_mib": rss_before_steps,
        // The steps' own high-water mark (warm-up included); null where it cannot be reset.
        "step_peak_rss_mib": step_peak,
        // Resident memory after the warm-up and after the timed steps: growth would mean
        // per-step allocations that are never freed.
        "rss_after_warmup_mib": rss_after_warmup,
        "rss_at_end_mib": rss_at_end,
        "rss_mib_per_step": rss_per_step,
        "peer": peer,
        // pdekit's step time over the peer's (neuraloperator's model, or the PyTorch mirror).
        "ratio_to_peer": torch_med.map(|t| step_med / t),
    });
    let json = crate::files::write_report(
        &PathBuf::from(RESULTS_DIR).join(format!("train-{}-{}.json", b.spec.kind(), stamp())),
        &mut doc,
    )?;
    Ok(Outcome { table, json })
}

/// One line naming the model and its sizes.
fn describe(spec: &ModelSpec) -> String {
    match spec {
        ModelSpec::Fno(f) | ModelSpec::Tfno(f) => format!(
            "{} width {}, modes {:?}, {} layers",
            spec.name(),
            f.width,
            f.modes,
            f.layers
        ),
        ModelSpec::MgTfno(m) => format!(
            "MG-TFNO width {}, modes {:?}, {} layers, levels {}, padding fraction {}, {} patches per pass",
            m.tfno.width,
            m.tfno.modes,
            m.tfno.layers,
            m.patching.levels,
            m.patching.padding_fraction,
            m.patch_batch.map_or("all".into(), |k| k.to_string())
        ),
        ModelSpec::FactFormer(f) => format!(
            "{} width {}, depth {}, {} heads × {}, latent {}, kernel multiplier {}, {}",
            if f.implicit { "IFactFormer" } else { "FactFormer" },
            f.width,
            f.depth,
            f.heads,
            f.dim_head,
            f.latent,
            f.kernel_multiplier,
            f.variant.name()
        ),
        other => other.name().to_string(),
    }
}

fn mib(v: Option<f64>) -> String {
    v.map_or("?".into(), |v| format!("{v:.0}"))
}

/// Runs the PyTorch peer of the model with the same sizes and reads its JSON: the FNO against
/// `bench/peers/fno_torch.py`, a TFNO or MG-TFNO against neuraloperator's in
/// `bench/peers/mgtfno_torch.py`, a FactFormer against the mirror in
/// `bench/peers/factformer_torch.py`.
fn run_peer(
    python: &Path,
    b: &TrainBench,
    reporter: &Reporter,
) -> Result<serde_json::Value, PdekitError> {
    let list = |v: &[usize]| v.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    let fno_args = |f: &pdekit_operators::models::fno::FnoSpec| {
        let mut a = vec!["--width".into(), f.width.to_string(), "--modes".into()];
        a.extend(list(&f.modes));
        a.extend(["--layers".into(), f.layers.to_string()]);
        a
    };
    let tucker = |f: &pdekit_operators::models::fno::FnoSpec| match &f.factorization {
        Factorization::Tucker(Rank::Fraction(r)) => Ok(vec![
            "--factorization".into(),
            "tucker".into(),
            "--rank".into(),
            r.to_string(),
        ]),
        Factorization::Cp(Rank::Fraction(r)) => Ok(vec![
            "--factorization".into(),
            "cp".into(),
            "--rank".into(),
            r.to_string(),
        ]),
        other => Err(PdekitError::Usage(format!(
            "the PyTorch peer takes a factorisation sized by `rank` (a fraction), not {other:?}"
        ))),
    };
    let (script, mut args): (&str, Vec<String>) = match &b.spec {
        ModelSpec::Fno(f) if f.factorization == Factorization::Dense => {
            ("fno_torch.py", fno_args(f))
        }
        ModelSpec::Fno(f) | ModelSpec::Tfno(f) => {
            let mut a = fno_args(f);
            a.extend(tucker(f)?);
            ("mgtfno_torch.py", a)
        }
        ModelSpec::MgTfno(m) => {
            let mut a = fno_args(&m.tfno);
            a.extend(tucker(&m.tfno)?);
            a.extend([
                "--levels".into(),
                m.patching.levels.to_string(),
                "--padding-fraction".into(),
                m.patching.padding_fraction.to_string(),
            ]);
            ("mgtfno_torch.py", a)
        }
        ModelSpec::FactFormer(f) => {
            let mut a: Vec<String> = [
                ("--width", f.width),
                ("--depth", f.depth),
                ("--heads", f.heads),
                ("--dim-head", f.dim_head),
                ("--latent", f.latent),
                ("--kernel-multiplier", f.kernel_multiplier),
            ]
            .iter()
            .flat_map(|(k, v)| [k.to_string(), v.to_string()])
            .collect();
            a.extend([
                "--variant".into(),
                f.variant.name().into(),
                "--embedding".into(),
                f.frame.embedding.name().into(),
            ]);
            if f.implicit {
                a.push("--implicit".into());
            }
            ("factformer_torch.py", a)
        }
        other => {
            return Err(PdekitError::Usage(format!(
                "--peers: there is no PyTorch peer for the {} here",
                other.name()
            )))
        }
    };
    let dir = PathBuf::from(RESULTS_DIR);
    crate::files::create_dir(&dir)?;
    let out = dir.join(format!("train-peer-{}.json", stamp()));
    args.extend(["--out".into(), out.display().to_string()]);
    args.push("--grid".into());
    args.extend(list(&b.grid));
    args.extend(["--batch".into(), b.batch.to_string()]);
    args.extend(["--steps".into(), b.steps.to_string()]);
    args.extend(["--threads".into(), rayon::current_num_threads().to_string()]);
    let paths: Vec<&Path> = args.iter().map(Path::new).collect();
    super::run_peer_script(python, script, &paths, reporter)?;
    super::read_peer_json(out)
}
