//! The memory budget: one limit on the bytes an entry may allocate, checked before anything is
//! allocated. Every buffer's size is formed with checked arithmetic here, so a shape whose
//! element count would wrap (dims of 2^32 × 2^32 behind a zero-size input) is refused instead
//! of becoming a small buffer that a kernel overruns.

use crate::dims::checked_product;
use crate::DType;
use std::fmt;

/// The environment variable that sets the limit (`8G`, `512M`, `1073741824`).
pub const LIMIT_VAR: &str = "FTL_MEMORY_LIMIT";

/// A request over the limit, or a size that does not fit in 64 bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverBudget {
    /// What asked: a buffer or input's name, or `"the entry"`.
    pub what: String,
    /// The bytes asked for in all (`None`: more than 2^64).
    pub bytes: Option<u64>,
    /// The limit.
    pub limit: u64,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asked = match self.bytes {
            Some(b) => format!("{} bytes ({})", b, human(b)),
            None => "more than 2^64 bytes".to_string(),
        };
        write!(
            f,
            "with {} the run needs {asked}, over the memory limit of {} (set {LIMIT_VAR}, e.g. {LIMIT_VAR}=64G, to change it)",
            self.what,
            human(self.limit)
        )
    }
}

impl std::error::Error for OverBudget {}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Parses a byte count: digits with an optional `K`, `M`, `G` or `T` suffix (powers of 1024).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 10),
        (i, 'M' | 'm') => (&t[..i], 20),
        (i, 'G' | 'g') => (&t[..i], 30),
        (i, 'T' | 't') => (&t[..i], 40),
        _ => (t, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Half of the machine's physical memory (4 GiB where it cannot be read).
pub fn default_limit() -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads system configuration.
        #[allow(unsafe_code)]
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGE_SIZE),
            )
        };
        if pages > 0 && page > 0 {
            return (pages as u64).saturating_mul(page as u64) / 2;
        }
    }
    4 << 30
}

/// The limit from [`LIMIT_VAR`], or [`default_limit`]; an unparsable value is an error.
pub fn limit_from_env() -> Result<u64, String> {
    match std::env::var(LIMIT_VAR) {
        Ok(v) => parse_bytes(&v)
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{LIMIT_VAR}={v} is not a byte count such as 8G or 512M")),
        Err(_) => Ok(default_limit()),
    }
}

/// Bytes charged against a limit.
#[derive(Clone, Debug)]
pub struct Budget {
    limit: u64,
    used: Option<u64>,
    what: String,
}

impl Budget {
    /// An empty budget with this limit.
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: Some(0),
            what: String::new(),
        }
    }

    /// Charges a tensor of `shape` and `dtype` named `what`; errors when the total would
    /// exceed the limit (the error names the first buffer over it).
    pub fn charge(&mut self, what: &str, shape: &[u64], dtype: DType) -> Result<(), OverBudget> {
        let bytes = checked_product(shape.iter().copied())
            .and_then(|n| n.checked_mul(dtype.size_bytes() as u64));
        self.used = match (self.used, bytes) {
            (Some(u), Some(b)) => u.checked_add(b),
            _ => None,
        };
        if self.what.is_empty() && self.used.is_none_or(|u| u > self.limit) {
            self.what = what.to_string();
        }
        self.check()
    }

    /// Errors when what was charged exceeds the limit.
    pub fn check(&self) -> Result<(), OverBudget> {
        match self.used {
            Some(u) if u <= self.limit => Ok(()),
            bytes => Err(OverBudget {
                what: self.what.clone(),
                bytes,
                limit: self.limit,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_wrap_or_exceed_the_limit_are_refused() {
        let mut b = Budget::new(1 << 20);
        b.charge("x", &[256, 256], DType::F32).unwrap();
        let e = b.charge("y", &[1 << 32, 1 << 32], DType::F32).unwrap_err();
        assert_eq!((e.what.as_str(), e.bytes), ("y", None));
        let mut b = Budget::new(1 << 20);
        let e = b.charge("z", &[1 << 20], DType::F32).unwrap_err();
        assert_eq!(e.bytes, Some(4 << 20));
        assert!(e.to_string().contains("over the memory limit of 1.0 MiB"));
    }

    #[test]
    fn byte_counts_parse_with_suffixes() {
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("99999999999T"), None);
        assert_eq!(parse_bytes("G"), None);
    }
}
