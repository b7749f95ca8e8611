use pdekit_operators::layers::spectral::SpectralConv;
use pdekit_operators::layers::Layer;
use pdekit_operators::tensor::Tensor;
use std::time::Instant;
fn main() {
    let shape = [16, 64, 64, 32];
    let n: usize = shape.iter().product();
    let x = Tensor::from_vec(&shape, (0..n).map(|i| ((i as f32) * 0.001).sin()).collect()).unwrap();
    let mut l = SpectralConv::new(32, 32, &[12, 12], 0).unwrap();
    let reps = 10;
    let (mut f, mut b) = (0.0, 0.0);
    for _ in 0..reps {
        let t = Instant::now();
        let y = l.forward(&x).unwrap();
        f += t.elapsed().as_secs_f64();
        let t = Instant::now();
        l.backward(&y).unwrap();
        b += t.elapsed().as_secs_f64();
    }
    println!("spectral fwd {:.2} ms bwd {:.2} ms", 1e3 * f / reps as f64, 1e3 * b / reps as f64);
}
