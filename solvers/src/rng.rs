//! Reproducible random streams: sample `i` of a run with seed `s` draws from its own stream, so its
//! randomness depends only on `(s, i)`, whatever the thread count, the order of work or the shard.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random stream of sample `index` in a run seeded with `seed`.
pub fn sample_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_depend_only_on_seed_and_index() {
        let x: u64 = sample_rng(7, 3).gen();
        let y: u64 = sample_rng(7, 3).gen();
        let z: u64 = sample_rng(7, 4).gen();
        let w: u64 = sample_rng(8, 3).gen();
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_ne!(x, w);
    }
}
