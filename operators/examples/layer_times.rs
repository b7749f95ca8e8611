use pdekit_operators::layers::compose::{channel_mlp, SoftGating};
use pdekit_operators::models::fno::FnoBlock;
use pdekit_operators::layers::factorized::Factorization;
use pdekit_operators::layers::linear::{Gelu, PointwiseLinear};
use pdekit_operators::layers::spectral::SpectralConv;
use pdekit_operators::layers::Layer;
use pdekit_operators::tensor::Tensor;
use std::time::Instant;

fn time(name: &str, layer: &mut dyn Layer<f32>, x: &Tensor<f32>) {
    let y = layer.forward(x).unwrap();
    layer.backward(&y).unwrap();
    let reps = 10;
    let (mut f, mut b) = (0.0, 0.0);
    for _ in 0..reps {
        let t = Instant::now();
        let y = layer.forward(x).unwrap();
        f += t.elapsed().as_secs_f64();
        let t = Instant::now();
        layer.backward(&y).unwrap();
        b += t.elapsed().as_secs_f64();
    }
    println!("{name:12} fwd {:7.2} ms  bwd {:7.2} ms", 1e3 * f / reps as f64, 1e3 * b / reps as f64);
}

fn main() {
    let shape = [16, 64, 64, 32];
    let n: usize = shape.iter().product();
    let x = Tensor::from_vec(&shape, (0..n).map(|i| ((i as f32) * 0.001).sin()).collect()).unwrap();
    time("block", &mut FnoBlock::new(32, &[12, 12], &Factorization::Dense, false, 0).unwrap(), &x);
    time("spectral", &mut SpectralConv::new(32, 32, &[12, 12], 0).unwrap(), &x);
    time("linear", &mut PointwiseLinear::new(32, 32, false, 0), &x);
    time("gelu", &mut Gelu::new(), &x);
    time("mlp 32-16-32", &mut channel_mlp(32, 16, 32, 0), &x);
    time("gate", &mut SoftGating::new(32), &x);
    let xl = Tensor::from_vec(&[16, 64, 64, 3], vec![0.5; 16 * 4096 * 3]).unwrap();
    time("lift 3-64-32", &mut channel_mlp(3, 64, 32, 0), &xl);
    time("proj 32-64-1", &mut channel_mlp(32, 64, 1, 0), &x);
}
