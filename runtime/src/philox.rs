//! Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), the
//! counter-based generator behind FTL's randomness. A draw is a pure function of
//! (seed, offset, site, element index), so results do not depend on evaluation order, CPU and GPU
//! agree bit for bit on uniforms, and a dropout mask regenerated in the backward pass is the
//! forward pass's mask.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// The Philox-4x32 bijection with 10 rounds.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The four words for element `index` of draw site `site`: key = seed, counter =
/// (index low, index high, site, offset).
pub fn draw(seed: u64, offset: u64, site: u32, index: u64) -> [u32; 4] {
    philox4x32_10(
        [index as u32, (index >> 32) as u32, site, offset as u32],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// A uniform f32 in [0, 1) from one word (its top 24 bits), exactly representable.
pub fn uniform(word: u32) -> f32 {
    (word >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A standard normal from two words by Box–Muller (the cosine branch), computed in f64.
pub fn normal(w0: u32, w1: u32) -> f64 {
    let u1 = (f64::from(w0 >> 8) + 1.0) / 16_777_216.0; // (0, 1]: log is finite
    let u2 = f64::from(w1 >> 8) / 16_777_216.0;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors from Random123's `kat_vectors` (philox4x32, 10 rounds).
    #[test]
    fn matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn uniforms_stay_in_range_and_look_uniform() {
        let n = 20_000;
        let mean: f64 = (0..n)
            .map(|i| f64::from(uniform(draw(7, 0, 1, i)[0])))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert!(uniform(u32::MAX) < 1.0 && uniform(0) == 0.0);
        let z: f64 = (0..n)
            .map(|i| {
                let w = draw(7, 0, 2, i);
                normal(w[0], w[1])
            })
            .map(|z| z * z)
            .sum::<f64>()
            / n as f64;
        assert!((z - 1.0).abs() < 0.05, "{z}");
    }
}
