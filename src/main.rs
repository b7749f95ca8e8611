use clap::{Args, Parser, Subcommand};
use pdekit::config::{ImageFormat, Plan, PlotPlan};
use pdekit::pipeline::{self, RunOptions, Shard};
use pdekit::progress::Reporter;
use pdekit::PdekitError;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// pdekit: PDE datasets, solvers and neural operators, driven by TOML configs.
#[derive(Parser, Debug)]
#[command(
    name = "pdekit",
    version,
    after_help = "Examples:\n  pdekit run configs/quickstart.toml\n  pdekit run configs/quickstart.toml --dry-run\n  pdekit inspect data/quickstart_darcy.h5\n\nExit codes: 0 success, 1 runtime failure, 2 usage or config error, 130 interrupted (rerun to resume)."
)]
struct Cli {
    /// Print nothing but errors and warnings; no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every stage of a config (generate, plot, ...), in order.
    #[command(
        after_help = "Example:\n  pdekit run configs/quickstart.toml\n  pdekit run configs/quickstart.toml --dry-run   # print the validated plan, run nothing"
    )]
    Run {
        /// The TOML config.
        config: PathBuf,
        /// Validate the config, print the plan with all defaults filled in, and exit.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        force: Force,
        /// Generate only shard I of N (0-based) and skip the other stages; see `generate --help`.
        #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
        shard: Option<Shard>,
    },
    /// Run only the generate stage of a config: draw and solve samples into an HDF5 dataset.
    #[command(
        after_help = "Examples:\n  pdekit generate configs/navier_stokes.toml\n  pdekit generate configs/navier_stokes.toml --shard 3/8   # samples [3N/8, 4N/8) into NAME.shard-3-of-8.h5\n  pdekit merge data/ns_1e-3.h5                             # join the 8 shards into one file\n\nAn interrupted run (Ctrl-C, kill) resumes from its last checkpoint when rerun. Shard I of N holds the\ncontiguous samples [I·N_samples/N, (I+1)·N_samples/N); sample i depends only on (seed, i), so the\nshards together equal the unsharded dataset. Readers (plot, inspect) open a complete shard set as one\ndataset when NAME.h5 itself does not exist."
    )]
    Generate {
        /// The TOML config; it needs a [generate] section.
        config: PathBuf,
        #[command(flatten)]
        force: Force,
        /// Generate only shard I of N (0-based).
        #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
        shard: Option<Shard>,
    },
    /// Run only the train stage of a config: train a neural operator on a dataset.
    #[command(
        after_help = "Examples:\n  pdekit train configs/darcy_fno.toml\n  pdekit train configs/darcy_fno.toml --force   # discard the checkpoint and start again\n\nA checkpoint is written after every epoch; rerunning resumes from it (optimizer state included)."
    )]
    Train {
        /// The TOML config; it needs a [train] section.
        config: PathBuf,
        #[command(flatten)]
        force: Force,
    },
    /// Score a checkpoint on a dataset (any resolution): relative L2, H1, RMSE and max error per
    /// sample and overall.
    #[command(
        after_help = "Examples:\n  pdekit evaluate --checkpoint runs/darcy_fno/checkpoint.safetensors --data data/darcy_fno_85.h5\n  pdekit evaluate --checkpoint C --data data/darcy_141.h5 --samples 100   # zero-shot super-resolution\n  pdekit evaluate --checkpoint C --data data/ns_64.h5 --start 1000 --subsample 2   # a test split, on every 2nd point"
    )]
    Evaluate {
        #[arg(long)]
        checkpoint: PathBuf,
        /// One or more datasets, each scored on its own (e.g. a test file and a finer-grid file).
        #[arg(long, num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// Evaluate from this row on (e.g. a training file's test split: --start 1000).
        #[arg(long, default_value_t = 0)]
        start: usize,
        /// Evaluate N samples from --start (default: to the end of the file).
        #[arg(long)]
        samples: Option<usize>,
        /// Evaluate on every K-th grid point of each axis (default 1: the data's grid).
        #[arg(long, default_value_t = 1)]
        subsample: usize,
        /// Where to write the JSON (default: beside the checkpoint; one --data file only).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the predictions (denormalised, [samples, grid…, channels]) as a NumPy .npy
        /// file (one --data file only).
        #[arg(long, value_name = "FILE.npy")]
        predictions: Option<PathBuf>,
    },
    /// Write a trained FNO or TFNO as a neuraloperator 2.x checkpoint that `FNO.from_checkpoint` loads.
    #[command(after_help = "Examples:
  pdekit export --checkpoint runs/darcy_fno_nop/checkpoint.safetensors --out exported/darcy

Writes exported/darcy_state_dict.pt and exported/darcy_metadata.pkl (neuraloperator's
save_checkpoint layout), and exported/darcy_normalizers.pt (a DefaultDataProcessor's state_dict with
two per-channel UnitGaussianNormalizers). In Python:
  model = neuralop.models.FNO.from_checkpoint(\"exported\", \"darcy\")

The FNO or TFNO must have been trained with block = \"neuraloperator\" in [train.fno] or [train.tfno] (neuraloperator's block:
a spectral bias, no GELU after the last spectral sum), linear coordinates and no domain padding.")]
    Export {
        /// The pdekit checkpoint of an FNO or TFNO.
        #[arg(long)]
        checkpoint: PathBuf,
        /// DIR/NAME, as neuraloperator's save_checkpoint(DIR, NAME) names its files.
        #[arg(long, value_name = "DIR/NAME")]
        out: PathBuf,
    },
    /// Read a neuraloperator 2.x FNO or TFNO checkpoint into a pdekit checkpoint (for `pdekit evaluate`).
    #[command(after_help = "Examples:
  pdekit import checkpoints/darcy --out runs/imported/checkpoint.safetensors
  pdekit import checkpoints/darcy --normalizers checkpoints/darcy_normalizers.pt --out C

SOURCE is DIR/NAME as given to model.save_checkpoint(DIR, NAME): DIR/NAME_state_dict.pt and
DIR/NAME_metadata.pkl are read. --normalizers reads a DefaultDataProcessor's state_dict
(torch.save(data_processor.state_dict(), FILE)) with per-channel normalisers; without it the
model sees the data as it is.")]
    Import {
        /// DIR/NAME of the neuraloperator checkpoint.
        #[arg(value_name = "DIR/NAME")]
        source: PathBuf,
        /// The pdekit checkpoint to write.
        #[arg(long)]
        out: PathBuf,
        /// A DefaultDataProcessor state_dict holding the input and output normalisers.
        #[arg(long, value_name = "FILE.pt")]
        normalizers: Option<PathBuf>,
    },
    /// Training runs side by side: test-error curves on one figure, a table of final errors,
    /// parameters, time per epoch and peak memory, and one test sample predicted by each.
    #[command(
        after_help = "Examples:\n  pdekit compare runs/ns_ffno/fno runs/ns_ffno/ffno runs/ns_ffno/factformer\n  pdekit compare runs/a runs/b --out figures/ab --format svg --data data/test.h5 --row 7\n\nWrites test_error.png, predictions.png (2-D models) and compare.json in --out, and prints the table.\nEach RUN is a training output_dir (or a checkpoint file); everything is read from the checkpoints."
    )]
    Compare {
        /// Training runs: output directories or checkpoint files.
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// Where the figures and compare.json go.
        #[arg(long, default_value = "compare")]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Png)]
        format: Format,
        /// The dataset of the prediction panels (default: the first run's test data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Its row (default: the first test row of the first run).
        #[arg(long)]
        row: Option<usize>,
    },
    /// Join the shard files of a sharded generate run into one dataset file.
    #[command(
        after_help = "Examples:\n  pdekit merge data/ns_1e-3.h5                 # finds data/ns_1e-3.shard-*-of-N.h5\n  pdekit merge data/all.h5 a.shard-0-of-2.h5 a.shard-1-of-2.h5"
    )]
    Merge {
        /// The merged dataset to write (must not exist).
        target: PathBuf,
        /// Shard files in order; default: the complete set NAME.shard-I-of-N.h5 beside TARGET.
        shards: Vec<PathBuf>,
    },
    /// Draw figures: a config's [plot] section, or a dataset given with --data.
    #[command(
        after_help = "Examples:\n  pdekit plot configs/quickstart.toml\n  pdekit plot --data data/quickstart_darcy.h5 --out runs/look --samples 6 --format svg"
    )]
    Plot(PlotArgs),
    /// Benchmarks; results go to bench/results/ as JSON (with machine, commit and command) and a chart.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Summarise an HDF5 dataset: layout, arrays, attributes and solver statistics.
    #[command(after_help = "Example:\n  pdekit inspect data/quickstart_darcy.h5")]
    Inspect {
        /// A pdekit dataset, a neuraloperator {x, y} file or a PDEBench Darcy file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Solve one sequence of systems with every method of a config's [solver_bench] section.
    #[command(
        after_help = "Examples:\n  pdekit bench solvers configs/bench/skr_darcy_paper.toml\n  pdekit bench solvers configs/bench/darcy_flux_128.toml --peers   # also scipy/pyamg, side by side\n\n--peers exports the systems as MatrixMarket files and runs bench/peers/solvers_scipy.py with\nPYTHON (default: bench/peers/.venv/bin/python if it exists, else python3); see bench/peers/README.md."
    )]
    Solvers {
        /// A TOML config with a [solver_bench] section.
        config: PathBuf,
        /// Also run the scipy/pyamg peers on the same systems, with this Python.
        #[arg(long, value_name = "PYTHON", num_args = 0..=1, default_missing_value = "auto")]
        peers: Option<PathBuf>,
    },
    /// Time dataset generation (samples/s) for a config's [generate] section.
    #[command(
        after_help = "Examples:\n  pdekit bench generate configs/bench/generate_ns.toml --peers\n  pdekit bench generate configs/navier_stokes.toml --samples 8\n\nThe samples are written to a scratch dataset under data/bench/ and removed afterwards. --peers runs\nbench/peers/generate_numpy.py (Burgers and Navier–Stokes) on the same settings, and both solve\nsample 0's initial condition so their outputs can be compared."
    )]
    Generate {
        /// A TOML config with a [generate] section.
        config: PathBuf,
        /// Time this many samples instead of the config's count.
        #[arg(long)]
        samples: Option<u64>,
        /// Also run the NumPy peer, with this Python.
        #[arg(long, value_name = "PYTHON", num_args = 0..=1, default_missing_value = "auto")]
        peers: Option<PathBuf>,
    },
    /// Time one GP-HM optimisation step and one exact grid-value step for a config's [gp] section.
    #[command(
        after_help = "Examples:\n  pdekit bench gp configs/gp/poisson2d_sin100.toml --points 200\n  pdekit bench gp configs/gp/poisson1d_sin100.toml --steps 2000"
    )]
    Gp(GpBenchArgs),
    /// Time one training step (forward, loss, backward, Adam) on random data, and its memory: an
    /// FNO, or the model of a config.
    #[command(
        after_help = "Examples:\n  pdekit bench train\n  pdekit bench train --peers   # also PyTorch (bench/peers/fno_torch.py), side by side\n  pdekit bench train --modes 16 --grid 1024 --width 64\n  pdekit bench train --config configs/ns_mgtfno.toml --grid 256 256 --batch 20 --steps 3\n  pdekit bench train --config configs/ns_factformer.toml --grid 128 128 --batch 20 --peers\n\n--peers runs bench/peers/fno_torch.py (an FNO), bench/peers/mgtfno_torch.py (a TFNO or MG-TFNO,\nneuraloperator's) or bench/peers/factformer_torch.py (a PyTorch mirror of the FactFormer) with PYTHON (default: bench/peers/.venv/bin/python if it\nexists, else python3); see bench/peers/README.md."
    )]
    Train(TrainBenchArgs),
    /// Time GP operator regression on a config's [train] split ([train.gp]): the hyper-parameter
    /// fit, the exact posterior and DTC posteriors at the same hyper-parameters.
    #[command(
        name = "gp-operator",
        after_help = "Examples:\n  pdekit bench gp-operator configs/ns_gp.toml\n  pdekit bench gp-operator configs/darcy_gp.toml --inducing 250 500 --peers   # also scikit-learn\n\n--peers runs bench/peers/gp_operator_sklearn.py with PYTHON (default: bench/peers/.venv/bin/python\nif it exists, else python3) on the same features, targets and hyper-parameters; see bench/peers/README.md."
    )]
    GpOperator {
        /// A TOML config with [train] and [train.gp].
        config: PathBuf,
        /// Also build DTC posteriors with these numbers of inducing points.
        #[arg(long, num_args = 1..)]
        inducing: Vec<usize>,
        /// Also run the scikit-learn peer, with this Python.
        #[arg(long, value_name = "PYTHON", num_args = 0..=1, default_missing_value = "auto")]
        peers: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct TrainBenchArgs {
    /// Time the model of this config's [train.<model>] table (one input and one output channel)
    /// instead of an FNO sized by --width, --modes and --layers.
    #[arg(long, conflicts_with_all = ["width", "modes", "layers"])]
    config: Option<PathBuf>,
    /// Channels inside the FNO blocks.
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Kept Fourier modes per axis (±m on all axes but the last).
    #[arg(long, num_args = 1..=3, default_values_t = [12, 12])]
    modes: Vec<usize>,
    /// FNO blocks.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Grid points per axis.
    #[arg(long, num_args = 1..=3, default_values_t = [64, 64])]
    grid: Vec<usize>,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Also run the PyTorch peer, with this Python.
    #[arg(long, value_name = "PYTHON", num_args = 0..=1, default_missing_value = "auto")]
    peers: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct GpBenchArgs {
    /// A TOML config with a [gp] section.
    config: PathBuf,
    /// Collocation points per axis instead of the config's.
    #[arg(long)]
    points: Option<usize>,
    /// Timed optimisation steps.
    #[arg(long, default_value_t = 200)]
    steps: usize,
}

#[derive(Args, Debug)]
struct Force {
    /// Discard existing outputs and partial files and start again.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// A TOML config with a [plot] section.
    #[arg(conflicts_with = "data", required_unless_present = "data")]
    config: Option<PathBuf>,
    /// A dataset to plot instead of a config.
    #[arg(long, requires = "out")]
    data: Option<PathBuf>,
    /// Folder for the figures (with --data).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Number of samples in the panel (with --data).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=16))]
    samples: u16,
    /// Image format (with --data).
    #[arg(long, value_enum, default_value = "png")]
    format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Png,
    Svg,
}

/// Training allocates and frees tensors of several MiB every step. By default glibc serves those
/// with fresh `mmap`s and returns them on free, so every step page-faults its tensors in again
/// (an 8 MiB copy took 4 ms, 1 ms without the faults). Keep freed memory in the process instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only tunes glibc's allocator; called before any other thread exists.
    unsafe {
        // 32 MiB is the largest threshold glibc accepts on 64-bit.
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        // First Ctrl-C: finish the current batch and checkpoint. Second: leave at once; the file
        // still holds everything up to the last checkpoint.
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: stopping after the current batch (press Ctrl-C again to stop now)"
            );
        });
    }
    let reporter = Reporter::new(cli.quiet);
    match dispatch(cli, reporter, &interrupted) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn dispatch(cli: Cli, reporter: Reporter, interrupted: &AtomicBool) -> Result<(), PdekitError> {
    match cli.command {
        Command::Run {
            config,
            dry_run,
            force,
            shard,
        } => {
            let plan = Plan::load(&config)?;
            if dry_run {
                if let Some(train) = &plan.train {
                    pipeline::train::preflight(train, &config)?;
                }
                let text = format!(
                    "# validated plan of {}\n{}",
                    config.display(),
                    plan.to_toml()
                );
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
                return Ok(());
            }
            pipeline::run(
                &plan,
                RunOptions {
                    force: force.force,
                    reporter,
                    shard,
                },
                interrupted,
            )
        }
        Command::Generate {
            config,
            force,
            shard,
        } => {
            let plan = Plan::load(&config)?;
            let opts = RunOptions {
                force: force.force,
                reporter,
                shard,
            };
            pipeline::generate::run(&plan, opts, interrupted).map(|_| ())
        }
        Command::Train { config, force } => {
            let plan = Plan::load(&config)?;
            let t = plan.train.as_ref().ok_or_else(|| {
                PdekitError::Usage(format!(
                    "{}: the config has no [train] section",
                    config.display()
                ))
            })?;
            pipeline::train::run(t, &plan.source_path, reporter, force.force, interrupted)
                .map(|_| ())
        }
        Command::Evaluate {
            checkpoint,
            data,
            start,
            samples,
            subsample,
            out,
            predictions,
        } => {
            for (flag, given) in [
                ("--out", out.is_some()),
                ("--predictions", predictions.is_some()),
            ] {
                if given && data.len() > 1 {
                    return Err(PdekitError::Usage(format!(
                        "{flag} names one file but --data gives {} datasets; evaluate them one at a time",
                        data.len()
                    )));
                }
            }
            let opts = pipeline::evaluate::EvalOptions {
                start,
                samples,
                subsample,
                out,
                predictions,
            };
            for file in &data {
                let outcome = pipeline::evaluate::evaluate(&checkpoint, file, &opts)?;
                reporter.info(format!(
                    "{}\nwrote {}",
                    outcome.table,
                    outcome.json.display()
                ));
            }
            Ok(())
        }
        Command::Compare {
            runs,
            out,
            format,
            data,
            row,
        } => {
            let outcome = pipeline::compare::compare(
                &runs,
                &pipeline::compare::CompareOptions {
                    out,
                    format: format.into(),
                    data,
                    row,
                },
            )?;
            reporter.info(format!(
                "{}wrote {} and {}",
                outcome.table,
                outcome.json.display(),
                listed(&outcome.figures)
            ));
            Ok(())
        }
        Command::Export { checkpoint, out } => {
            let info = pdekit::interop::neuralop::export(&checkpoint, &out)?;
            reporter.info(format!(
                "wrote {}, {} and {} ({} tensors, {} values).\nIn Python: neuralop.models.{}.from_checkpoint({:?}, {:?})",
                info.state_dict.display(),
                info.metadata.display(),
                info.normalizers.display(),
                info.tensors,
                info.values,
                info.class,
                out.parent().map_or_else(|| ".".into(), |p| p.display().to_string()),
                out.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            ));
            Ok(())
        }
        Command::Import {
            source,
            out,
            normalizers,
        } => {
            let info = pdekit::interop::neuralop::import(&source, normalizers.as_deref(), &out)?;
            let s = &info.spec;
            reporter.info(format!(
                "wrote {}: an FNO (neuraloperator's block) of width {}, {} layers, modes {:?}, {} → {} channels, from {} tensors{}",
                info.checkpoint.display(),
                s.width,
                s.layers,
                s.modes,
                s.in_channels,
                s.out_channels,
                info.tensors,
                if info.normalized { "" } else { "; no --normalizers, so the identity normalisers are stored" }
            ));
            Ok(())
        }
        Command::Merge { target, shards } => {
            let bar = reporter.bar(0, "merge", "samples");
            let report = pdekit::data::merge::merge(&target, &shards, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            reporter.info(format!(
                "merged {} shards ({} samples) into {}",
                report.shards,
                report.samples,
                report.output.display()
            ));
            Ok(())
        }
        Command::Plot(args) => {
            let plot = match (args.config, args.data, args.out) {
                (Some(config), _, _) => {
                    let plan = Plan::load(&config)?;
                    plan.plot.ok_or_else(|| {
                        PdekitError::Usage(format!(
                            "{}: the config has no [plot] section",
                            config.display()
                        ))
                    })?
                }
                (None, Some(data), Some(out)) => PlotPlan {
                    input: data,
                    output_dir: out,
                    samples: usize::from(args.samples),
                    format: args.format.into(),
                },
                _ => {
                    return Err(PdekitError::Usage(
                        "plot needs a CONFIG, or --data FILE with --out DIR".into(),
                    ))
                }
            };
            pipeline::plot::run(&plot, reporter).map(|_| ())
        }
        Command::Inspect { file } => {
            let text = pipeline::inspect::summary(&file)?;
            // A closed pipe (`pdekit inspect f.h5 | head`) is not an error worth reporting.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            Ok(())
        }
        Command::Bench(BenchCommand::Generate {
            config,
            samples,
            peers,
        }) => {
            let plan = Plan::load(&config)?;
            let python = peers.map(peer_python);
            let outcome = pdekit::bench::generate::run(
                &plan,
                &reporter,
                samples,
                python.as_deref(),
                interrupted,
            )?;
            reporter.info(format!(
                "\n{}\nwrote {}",
                outcome.table,
                outcome.json.display()
            ));
            Ok(())
        }
        Command::Bench(BenchCommand::Train(args)) => {
            let python = args.peers.map(peer_python);
            let spec = match &args.config {
                None => pdekit::bench::train::fno_spec(args.width, args.modes, args.layers),
                Some(config) => pdekit::bench::train::config_spec(config)?,
            };
            let bench = pdekit::bench::train::TrainBench {
                spec,
                grid: args.grid,
                batch: args.batch,
                steps: args.steps,
            };
            let outcome = pdekit::bench::train::run(&bench, &reporter, python.as_deref())?;
            reporter.info(format!(
                "{}\nwrote {}",
                outcome.table,
                outcome.json.display()
            ));
            Ok(())
        }
        Command::Bench(BenchCommand::Gp(args)) => {
            let plan = Plan::load(&args.config)?;
            let outcome = pdekit::bench::gp::run(&plan, &reporter, args.points, args.steps)?;
            reporter.info(format!(
                "{}\nwrote {}",
                outcome.table,
                outcome.json.display()
            ));
            Ok(())
        }
        Command::Bench(BenchCommand::GpOperator {
            config,
            inducing,
            peers,
        }) => {
            let plan = Plan::load(&config)?;
            let python = peers.map(peer_python);
            let outcome =
                pdekit::bench::gp_operator::run(&plan, &reporter, &inducing, python.as_deref())?;
            reporter.info(format!(
                "{}\nwrote {}",
                outcome.table,
                outcome.json.display()
            ));
            Ok(())
        }
        Command::Bench(BenchCommand::Solvers { config, peers }) => {
            let plan = Plan::load(&config)?;
            let python = peers.map(peer_python);
            let outcome = pdekit::bench::solvers::run(&plan, &reporter, python.as_deref())?;
            reporter.info(format!(
                "\n{}\nwrote {}, {}",
                outcome.table,
                outcome.json.display(),
                listed(&outcome.figures)
            ));
            Ok(())
        }
    }
}

impl From<Format> for ImageFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Png => ImageFormat::Png,
            Format::Svg => ImageFormat::Svg,
        }
    }
}

/// Paths, comma-separated, for a closing message.
fn listed(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--peers` without a value: the peers' venv if it exists, else `python3`.
fn peer_python(p: PathBuf) -> PathBuf {
    if p.as_os_str() != "auto" {
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/peers/.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}
