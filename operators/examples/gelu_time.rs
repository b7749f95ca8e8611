use pdekit_operators::layers::linear::gelu;
use pdekit_operators::tensor::{Real, Tensor};
use std::time::Instant;
extern "C" { fn mallopt(param: i32, value: i32) -> i32; }
fn main() {
    if std::env::var("TUNE").is_ok() { unsafe { mallopt(-3, 1 << 30); mallopt(-1, 1 << 30); } }
    let n = 16 * 64 * 64 * 32;
    let x = Tensor::from_vec(&[n, 1], (0..n).map(|i| ((i as f32) * 0.001).sin() * 3.0).collect()).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let y = gelu(&x);
        let a = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut z = vec![0f32; n];
        let b = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (o, &v) in z.iter_mut().zip(&x.data) { *o = v * v.normal_cdf_pdf().0; }
        let c = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let w = x.data.clone();
        let d = t.elapsed().as_secs_f64();
        println!("gelu {:.2} ms, alloc+zero {:.2} ms, serial loop {:.2} ms, clone {:.2} ms {}", a*1e3, b*1e3, c*1e3, d*1e3, y.data[5]+z[7]+w[3]);
    }
}
