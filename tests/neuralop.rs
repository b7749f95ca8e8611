//! `pdekit export` and `pdekit import`: neuraloperator 2.x FNO checkpoints in and out.
//!
//! The fixture under tests/fixtures/neuralop_fno/ was written by neuraloperator itself
//! (tests/make_torch_fixtures.py); the NumPy reference forward pass on exported files runs in
//! tests/interop.py.

mod common;

use pdekit::interop::neuralop::{export, import};
use pdekit::interop::torch_file::{self, Py, TensorData, TorchFile};
use pdekit_operators::layers::Layer;
use pdekit_operators::tensor::Tensor;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/neuralop_fno")
        .join(name)
}

/// A channels-first torch array `[b, c, grid...]` as a channels-last tensor.
fn channels_last(t: &TensorData) -> Tensor<f32> {
    let (b, c) = (t.shape[0], t.shape[1]);
    let points: usize = t.shape[2..].iter().product();
    let mut data = vec![0.0f32; t.values.len()];
    for s in 0..b {
        for ch in 0..c {
            for p in 0..points {
                data[(s * points + p) * c + ch] = t.values[(s * c + ch) * points + p] as f32;
            }
        }
    }
    let mut shape = vec![b];
    shape.extend(&t.shape[2..]);
    shape.push(c);
    Tensor::from_vec(&shape, data).unwrap()
}

/// Every parameter of a loaded checkpoint's model, by name.
fn weights(l: &mut pdekit::checkpoint::Loaded) -> Vec<(String, Vec<f32>)> {
    l.model
        .parameters()
        .iter()
        .map(|p| (p.name.clone(), p.value.to_vec()))
        .collect()
}

fn max_relative(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

#[test]
fn a_checkpoint_saved_by_neuraloperator_imports_and_predicts_what_it_predicted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("imported.safetensors");
    let info = import(&fixture("tiny"), None, &out).unwrap();
    assert_eq!((info.spec.width, info.spec.layers), (6, 2));
    // n_modes (4, 6): ±2 along the first axis, 6 // 2 + 1 = 4 along the last.
    assert_eq!(info.spec.modes, vec![2, 4]);
    let io = TorchFile::open(&fixture("tiny_io.pt")).unwrap();
    let tensor = |k: &str| match io.object.get(k) {
        Some(Py::Tensor(t)) => io.tensor(t).unwrap(),
        other => panic!("{k}: {other:?}"),
    };
    let (x, y) = (channels_last(&tensor("x")), channels_last(&tensor("y")));
    let mut loaded = pdekit::checkpoint::load(&out).unwrap();
    let pred = loaded.model.forward(&x).unwrap();
    assert_eq!(pred.shape, y.shape);
    let diff = max_relative(&pred.data, &y.data);
    assert!(diff < 1e-5, "pdekit vs neuraloperator: {diff:e}");
}

#[test]
fn export_then_import_gives_back_the_same_weights_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.safetensors");
    import(&fixture("tiny"), None, &first).unwrap();
    let prefix = dir.path().join("exported/again");
    let info = export(&first, &prefix).unwrap();
    assert!(
        info.state_dict.ends_with("again_state_dict.pt"),
        "{:?}",
        info.state_dict
    );
    let second = dir.path().join("second.safetensors");
    import(&prefix, Some(&info.normalizers), &second).unwrap();
    let (mut a, mut b) = (
        pdekit::checkpoint::load(&first).unwrap(),
        pdekit::checkpoint::load(&second).unwrap(),
    );
    assert_eq!(weights(&mut a), weights(&mut b));
    // The normalisers travel as f32, with neuraloperator's eps taken out of the standard
    // deviation and put back: equal to f32 rounding.
    for (p, q) in [(&a.x_norm, &b.x_norm), (&a.y_norm, &b.y_norm)] {
        assert_eq!(p.mean, q.mean);
        for (s, t) in p.std.iter().zip(&q.std) {
            assert!((s - t).abs() <= 1e-7 * s, "{s} vs {t}");
        }
    }
    // The exported state dict names neuraloperator's keys, with its shapes.
    let sd = TorchFile::open(&info.state_dict).unwrap();
    let Some(Py::Tensor(w)) = sd.object.get("fno_blocks.convs.1.weight.tensor") else {
        panic!("{:?}", sd.object.describe())
    };
    assert_eq!(w.shape, vec![6, 6, 4, 4]);
    let meta = TorchFile::open(&info.metadata).unwrap();
    assert_eq!(
        meta.object.get("n_modes"),
        Some(&Py::Tuple(vec![Py::Int(4), Py::Int(6)]))
    );
    assert_eq!(meta.object.get("_name"), Some(&Py::str("FNO")));
}

#[test]
fn export_and_import_refuse_what_they_cannot_map_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An FNO with pdekit's block: trained for one epoch on a tiny dataset.
    common::write(d, "gen.toml", &common::darcy_config("d.h5", 12, 8, ""));
    let (code, _, err) = common::run(&["generate", d.join("gen.toml").to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{err}");
    let train = |name: &str, table: &str| {
        let cfg = common::write(
            d,
            &format!("{name}.toml"),
            &format!("[train]\ndata = \"d.h5\"\ntrain_samples = 8\ntest_samples = 4\nepochs = 1\nbatch_size = 4\noutput_dir = \"{name}\"\n\n{table}\n"),
        );
        let (code, _, err) = common::run(&["train", cfg.to_str().unwrap(), "-q"]);
        assert_eq!(code, 0, "{err}");
        d.join(name).join("checkpoint.safetensors")
    };
    let plain = train(
        "plain",
        "[train.fno]\nwidth = 4\nmodes = [2, 2]\nlayers = 1",
    );
    let (code, _, err) = common::run(&[
        "export",
        "--checkpoint",
        plain.to_str().unwrap(),
        "--out",
        d.join("x/m").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("plain/checkpoint.safetensors") && err.contains("block = \"neuraloperator\""),
        "{err}"
    );
    assert!(!d.join("x").exists(), "nothing written on refusal");
    let padded = train(
        "padded",
        "[train.fno]\nwidth = 4\nmodes = [2, 2]\nlayers = 1\nblock = \"neuraloperator\"\ndomain_padding = 0.25",
    );
    let e = export(&padded, &d.join("y/m")).unwrap_err().to_string();
    assert!(e.contains("domain_padding = 0.25"), "{e}");
    let deeponet = train(
        "deeponet",
        "[train.deeponet]\nsensors = [4, 4]\nbranch = [8]\ntrunk = [8]\nbasis = 4",
    );
    let e = export(&deeponet, &d.join("z/m")).unwrap_err().to_string();
    assert!(e.contains("it is a DeepONet"), "{e}");
    // A neuraloperator-block FNO trained here goes out and comes back.
    let ok = train(
        "ok",
        "[train.fno]\nwidth = 4\nmodes = [2, 2]\nlayers = 2\nblock = \"neuraloperator\"",
    );
    let (code, out, err) = common::run(&[
        "export",
        "--checkpoint",
        ok.to_str().unwrap(),
        "--out",
        d.join("ok_out/m").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("FNO.from_checkpoint(") || err.contains("FNO.from_checkpoint("),
        "{out}{err}"
    );

    // Import: a missing checkpoint names the file it looked for.
    let e = import(&d.join("nothing/here"), None, &d.join("i.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("here_metadata.pkl") && e.contains("no such file"),
        "{e}"
    );
    // An option pdekit's FNO does not have names the key and the value.
    let meta = TorchFile::open(&fixture("tiny_metadata.pkl")).unwrap();
    let Py::Dict(mut items) = meta.object.clone() else {
        panic!()
    };
    for (k, v) in items.iter_mut() {
        if *k == Py::str("norm") {
            *v = Py::str("group_norm");
        }
    }
    let bad = d.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    torch_file::save(
        &bad.join("m_metadata.pkl"),
        "m_metadata",
        &Py::Dict(items),
        &[],
    )
    .unwrap();
    std::fs::copy(fixture("tiny_state_dict.pt"), bad.join("m_state_dict.pt")).unwrap();
    let e = import(&bad.join("m"), None, &d.join("i.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m_metadata.pkl") && e.contains("`norm`") && e.contains("group_norm"),
        "{e}"
    );
    // A state dict whose tensor does not fit the metadata names the key and both shapes.
    std::fs::copy(fixture("tiny_metadata.pkl"), bad.join("m_metadata.pkl")).unwrap();
    let sd = TorchFile::open(&fixture("tiny_state_dict.pt")).unwrap();
    let Py::Dict(items) = sd.object.clone() else {
        panic!()
    };
    let mut tensors = Vec::new();
    let mut state = Vec::new();
    for (k, v) in items {
        let Py::Tensor(t) = v else { continue };
        let mut data = sd.tensor(&t).unwrap();
        if k == Py::str("lifting.fcs.0.bias") {
            data.values.pop();
            data.shape = vec![data.values.len()];
        }
        state.push((k, torch_file::tensor_ref(tensors.len(), &data)));
        tensors.push(data);
    }
    torch_file::save(
        &bad.join("m_state_dict.pt"),
        "m_state_dict",
        &Py::Dict(state),
        &tensors,
    )
    .unwrap();
    let e = import(&bad.join("m"), None, &d.join("i.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`lifting.fcs.0.bias`") && e.contains("[11]") && e.contains("[12]"),
        "{e}"
    );
    assert!(
        !d.join("i.safetensors").exists(),
        "no checkpoint written on error"
    );
}

#[test]
fn tfnos_go_out_and_come_back_with_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    common::write(d, "gen.toml", &common::darcy_config("d.h5", 12, 12, ""));
    let (code, _, err) = common::run(&["generate", d.join("gen.toml").to_str().unwrap(), "-q"]);
    assert_eq!(code, 0, "{err}");
    for (kind, rank) in [("tucker", "ranks = [3, 2, 4, 5]"), ("cp", "rank = 0.4")] {
        let cfg = common::write(
            d,
            &format!("{kind}.toml"),
            &format!("[train]\ndata = \"d.h5\"\ntrain_samples = 8\ntest_samples = 4\nepochs = 1\nbatch_size = 4\noutput_dir = \"{kind}\"\n\n[train.tfno]\nwidth = 6\nmodes = [2, 3]\nlayers = 2\nblock = \"neuraloperator\"\nfactorization = \"{kind}\"\n{rank}\n"),
        );
        let (code, _, err) = common::run(&["train", cfg.to_str().unwrap(), "-q"]);
        assert_eq!(code, 0, "{kind}: {err}");
        let first = d.join(kind).join("checkpoint.safetensors");
        let prefix = d.join("out").join(kind);
        let info = export(&first, &prefix).unwrap();
        let meta = TorchFile::open(&info.metadata).unwrap();
        let sd = TorchFile::open(&info.state_dict).unwrap();
        if kind == "tucker" {
            // tensorly's order (in, out, modes…) for pdekit's ranks [modes…, in, out].
            let want = Py::Tuple([4, 5, 3, 2].map(Py::Int).to_vec()).describe();
            assert_eq!(meta.object.get("rank").unwrap().describe(), want);
            let Some(Py::Tensor(core)) = sd.object.get("fno_blocks.convs.0.weight.core") else {
                panic!("{}", sd.object.describe())
            };
            assert_eq!(core.shape, vec![4, 5, 3, 2]);
        } else {
            assert!(sd.object.get("fno_blocks.convs.1.weight.weights").is_some());
        }
        let second = d.join(format!("{kind}-back.safetensors"));
        let back = import(&prefix, Some(&info.normalizers), &second).unwrap();
        assert_ne!(
            back.spec.factorization,
            pdekit_operators::layers::factorized::Factorization::Dense
        );
        let (mut a, mut b) = (
            pdekit::checkpoint::load(&first).unwrap(),
            pdekit::checkpoint::load(&second).unwrap(),
        );
        // CP weights of 1 fold into the factor unchanged, so both kinds come back bit for bit.
        assert_eq!(weights(&mut a), weights(&mut b), "{kind}");
        let x = Tensor::from_vec(
            &[1, 12, 12, 1],
            (0..144).map(|i| (i as f32 * 0.37).sin()).collect(),
        )
        .unwrap();
        assert_eq!(
            a.model.forward(&x).unwrap().data,
            b.model.forward(&x).unwrap().data,
            "{kind}"
        );
    }
}
