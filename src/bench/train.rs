//! `pdekit bench train`: the cost of one FNO training step (forward, relative L2 loss, backward,
//! Adam update) in f32 on random data, optionally beside the same model in PyTorch
//! (`bench/peers/fno_torch.py`).

use super::stamp;
use crate::config::bench::RESULTS_DIR;
use crate::meta::{peak_rss_mib, rss_mib};
use crate::progress::Reporter;
use crate::PdekitError;
use pdekit_operators::layers::Layer;
use pdekit_operators::models::fno::{Fno, FnoSpec, GridFrame};
use pdekit_operators::tensor::{NnError, Tensor};
use pdekit_operators::train::loss::relative_l2;
use pdekit_operators::train::optim::{Adam, AdamParams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The benchmark's model and data sizes.
#[derive(Debug, Clone)]
pub struct TrainBench {
    pub width: usize,
    pub modes: Vec<usize>,
    pub layers: usize,
    pub grid: Vec<usize>,
    pub batch: usize,
    pub steps: usize,
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
    if b.modes.len() != b.grid.len() {
        return Err(PdekitError::Usage(format!(
            "--modes gives {} axes but --grid gives {}",
            b.modes.len(),
            b.grid.len()
        )));
    }
    if b.steps == 0 || b.batch == 0 {
        return Err(PdekitError::Usage(
            "--steps and --batch must be at least 1".into(),
        ));
    }
    let spec = FnoSpec {
        in_channels: 1,
        out_channels: 1,
        width: b.width,
        modes: b.modes.clone(),
        layers: b.layers,
        frame: GridFrame::default(),
        factorization: pdekit_operators::layers::factorized::Factorization::Dense,
        seed: 0,
    };
    let usage = |e: NnError| PdekitError::Usage(e.to_string());
    let mut model = Fno::<f32>::new(spec).map_err(usage)?;
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
    let rss_at_end = rss_mib();
    let rss_half_way = rss_per_step.get(rss_per_step.len() / 2).copied();
    let step_min = step.iter().copied().fold(f64::INFINITY, f64::min);
    let (step_med, fb_med) = (median(&mut step), median(&mut fb));
    let params = model.parameter_count();
    let peer = match python {
        None => None,
        Some(py) => Some(run_peer(py, b, reporter)?),
    };
    let torch_med = peer
        .as_ref()
        .and_then(|p| p["models"]["neuraloperator"]["step_seconds_median"].as_f64());
    let mut table = format!(
        "FNO width {}, modes {:?}, {} layers, grid {:?}, batch {}, {} parameters, {} threads:\n  pdekit: {:.1} ms per training step (median of {}; min {:.1}), forward+backward {:.1} ms; resident memory {} MiB after warm-up, {} MiB half-way, {} MiB at the end",
        b.width,
        b.modes,
        b.layers,
        b.grid,
        b.batch,
        params,
        rayon::current_num_threads(),
        1e3 * step_med,
        b.steps,
        1e3 * step_min,
        1e3 * fb_med,
        rss_after_warmup.map_or("?".into(), |v| format!("{v:.0}")),
        rss_half_way.map_or("?".into(), |v| format!("{v:.0}")),
        rss_at_end.map_or("?".into(), |v| format!("{v:.0}")),
    );
    if let Some(p) = &peer {
        for (name, m) in p["models"].as_object().into_iter().flatten() {
            if let Some(s) = m["step_seconds_median"].as_f64() {
                table.push_str(&format!(
                    "\n  PyTorch {} ({name}): {:.1} ms per step ({} parameters)",
                    p["torch"].as_str().unwrap_or("?"),
                    1e3 * s,
                    m["parameters"]
                ));
            }
        }
        if let Some(t) = torch_med {
            table.push_str(&format!(
                "\n  pdekit / PyTorch (neuraloperator) step time: {:.2}",
                step_med / t
            ));
        }
    }
    let mut doc = json!({
        "benchmark": "train",
        "threads": rayon::current_num_threads(),
        "model": {"kind": "fno", "width": b.width, "modes": b.modes, "layers": b.layers, "parameters": params},
        "grid": b.grid,
        "batch": b.batch,
        "precision": "f32",
        "timed_steps": b.steps,
        "warmup_steps": warmup,
        "step_seconds_median": step_med,
        "step_seconds_min": step_min,
        "forward_backward_seconds_median": fb_med,
        "peak_rss_mib": peak_rss_mib(),
        // Resident memory after the warm-up and after the timed steps: growth would mean
        // per-step allocations that are never freed.
        "rss_after_warmup_mib": rss_after_warmup,
        "rss_at_end_mib": rss_at_end,
        "rss_mib_per_step": rss_per_step,
        "peer": peer,
        "ratio_to_neuraloperator": torch_med.map(|t| step_med / t),
    });
    let json = crate::files::write_report(
        &PathBuf::from(RESULTS_DIR).join(format!("train-fno-{}.json", stamp())),
        &mut doc,
    )?;
    Ok(Outcome { table, json })
}

/// Runs `bench/peers/fno_torch.py` with the same sizes and reads its JSON.
fn run_peer(
    python: &Path,
    b: &TrainBench,
    reporter: &Reporter,
) -> Result<serde_json::Value, PdekitError> {
    let dir = PathBuf::from(RESULTS_DIR);
    crate::files::create_dir(&dir)?;
    let out = dir.join(format!("train-peer-{}.json", stamp()));
    let list = |v: &[usize]| v.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    let mut args: Vec<String> = vec!["--out".into(), out.display().to_string()];
    args.extend(["--width".into(), b.width.to_string()]);
    args.push("--modes".into());
    args.extend(list(&b.modes));
    args.extend(["--layers".into(), b.layers.to_string()]);
    args.push("--grid".into());
    args.extend(list(&b.grid));
    args.extend(["--batch".into(), b.batch.to_string()]);
    args.extend(["--steps".into(), b.steps.to_string()]);
    args.extend(["--threads".into(), rayon::current_num_threads().to_string()]);
    let paths: Vec<&Path> = args.iter().map(Path::new).collect();
    super::run_peer_script(python, "fno_torch.py", &paths, reporter)?;
    super::read_peer_json(out)
}
