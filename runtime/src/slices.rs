//! The width of the slices a sliced region runs on (`Step::Sliced`): as many columns of the
//! sliced dim as make its slice-sized buffers fill a budget of a few L2 caches, so a slice is
//! consumed while it is still cached and the region's memory does not grow with the dim (the
//! vocabulary); at least 512 columns, below which the GEMMs of a slice lose their efficiency.
//! Measured on DPO from hidden states (8 × 256 rows, H = 1024, V = 32000, 2 cores with 2 MiB L2
//! each): 512–768 columns 2.04–2.09 s, 2048 columns 2.9 s, 8192 columns 2.6 s, 256 columns 2.4 s.

use std::sync::OnceLock;

/// The rule, as `ftc build --emit kernels` shows it.
pub const RULE: &str = "slice width max(512, ⌊budget / bytes per column⌋) columns, a multiple \
of 16; budget = 4 × L2 cache within [4, 32] MiB; FTL_SLICE_COLUMNS sets the width";

/// The slice width for a region whose local buffers take `bytes_per_column` bytes per column
/// of a dim of size `extent`: at least 1, at most `extent`.
pub fn width(bytes_per_column: usize, extent: usize) -> usize {
    let fixed = std::env::var("FTL_SLICE_COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|w| *w > 0);
    let w = fixed.unwrap_or_else(|| {
        let columns = budget() / bytes_per_column.max(1);
        (columns / 16 * 16).max(512)
    });
    w.clamp(1, extent.max(1))
}

/// Four L2 caches, within [4, 32] MiB (Linux reports caches in sysfs; elsewhere the lower
/// bound).
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        const MIB: usize = 1 << 20;
        (4 * l2_cache().unwrap_or(0)).clamp(4 * MIB, 32 * MIB)
    })
}

/// The size of CPU 0's level-2 cache, from sysfs.
fn l2_cache() -> Option<usize> {
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let (Ok(level), Ok(size)) = (
            std::fs::read_to_string(format!("{dir}/level")),
            std::fs::read_to_string(format!("{dir}/size")),
        ) else {
            continue;
        };
        let level: u32 = level.trim().parse().ok()?;
        let size = size.trim();
        let bytes = match size.strip_suffix('K') {
            Some(k) => k.parse::<usize>().ok()? << 10,
            None => match size.strip_suffix('M') {
                Some(m) => m.parse::<usize>().ok()? << 20,
                None => size.parse().ok()?,
            },
        };
        if level == 2 {
            return Some(bytes);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_are_multiples_of_16_within_the_extent() {
        if std::env::var("FTL_SLICE_COLUMNS").is_ok() {
            return;
        }
        let w = width(2 * 2048 * 4, 32000);
        assert!(w.is_multiple_of(16) && (16..=32000).contains(&w), "{w}");
        assert_eq!(width(4, 10), 10);
        assert_eq!(width(1 << 30, 32000), 512);
    }
}
