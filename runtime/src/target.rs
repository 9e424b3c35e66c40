//! The CPU an artifact's code was compiled for: its architecture, a CPU level (`native` or an
//! x86-64 micro-architecture level) and the instruction-set features the code may use. The
//! compiler records it in every artifact; the loader refuses a machine that lacks any of the
//! features, with a clear error instead of a SIGILL in the middle of a kernel.

use serde::{Deserialize, Serialize};

/// A compilation target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `std::env::consts::ARCH` of the machine the code runs on (`x86_64`, `aarch64`).
    pub arch: String,
    /// `native` (the build machine's CPU) or a level such as `x86-64-v3`.
    pub cpu: String,
    /// Features the code may use, as `is_x86_feature_detected!` names them (sorted).
    pub features: Vec<String>,
}

/// The x86-64 micro-architecture levels `--target-cpu` accepts, each with the features it adds
/// to the one before (psABI's table).
const X86_LEVELS: [(&str, &[&str]); 4] = [
    ("x86-64", &["sse", "sse2"]),
    (
        "x86-64-v2",
        &["cmpxchg16b", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"],
    ),
    (
        "x86-64-v3",
        &[
            "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave",
        ],
    ),
    (
        "x86-64-v4",
        &["avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"],
    ),
];

/// The level an artifact gets when the user names none: runs on x86-64 CPUs since about 2015
/// (Haswell, Zen 1) and keeps AVX2 and FMA for the kernels' vector loops.
pub const DEFAULT_LEVEL: &str = "x86-64-v3";

/// Which of the features the detection table knows the running CPU has.
#[cfg(target_arch = "x86_64")]
fn host_features() -> Vec<&'static str> {
    macro_rules! detected {
        ($($f:tt),* $(,)?) => {{
            let mut v = Vec::new();
            $(if std::arch::is_x86_feature_detected!($f) { v.push($f); })*
            v
        }};
    }
    detected!(
        "sse",
        "sse2",
        "cmpxchg16b",
        "popcnt",
        "sse3",
        "sse4.1",
        "sse4.2",
        "ssse3",
        "avx",
        "avx2",
        "bmi1",
        "bmi2",
        "f16c",
        "fma",
        "lzcnt",
        "movbe",
        "xsave",
        "avx512bw",
        "avx512cd",
        "avx512dq",
        "avx512f",
        "avx512vl",
        "avx512ifma",
        "avx512vbmi",
        "avx512vbmi2",
        "avx512vnni",
        "avx512bitalg",
        "avx512vpopcntdq",
        "avx512bf16",
        "avx512fp16",
        "avxvnni",
        "aes",
        "pclmulqdq",
        "sha",
        "gfni",
        "vaes",
        "vpclmulqdq",
        "adx",
        "rdrand",
        "rdseed",
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn host_features() -> Vec<&'static str> {
    Vec::new()
}

/// The `arch` of CUDA code: PTX, which the driver assembles for the device it runs on.
pub const CUDA_ARCH: &str = "nvptx64";

impl Target {
    /// PTX for `chip` (`sm_80`, `sm_90`: the `cpu` field names the chip).
    pub fn cuda(chip: &str) -> Target {
        Target {
            arch: CUDA_ARCH.to_string(),
            cpu: chip.to_string(),
            features: Vec::new(),
        }
    }

    /// Whether this is CUDA code (PTX) rather than CPU code.
    pub fn is_cuda(&self) -> bool {
        self.arch == CUDA_ARCH
    }

    /// The running machine's CPU, with every feature the detection table finds.
    pub fn native() -> Target {
        let mut features: Vec<String> = host_features().into_iter().map(String::from).collect();
        features.sort();
        Target {
            arch: std::env::consts::ARCH.to_string(),
            cpu: "native".to_string(),
            features,
        }
    }

    /// The target `--target-cpu NAME` names: `native` or an x86-64 level (on x86-64 only).
    pub fn named(name: &str) -> Result<Target, String> {
        if name == "native" {
            return Ok(Target::native());
        }
        let levels: Vec<&str> = X86_LEVELS.iter().map(|(n, _)| *n).collect();
        let Some(k) = levels.iter().position(|l| *l == name) else {
            return Err(format!(
                "unknown target CPU `{name}` (expected native, {})",
                levels.join(", ")
            ));
        };
        if std::env::consts::ARCH != "x86_64" {
            return Err(format!(
                "target CPU `{name}` is an x86-64 level; this machine is {} (use native)",
                std::env::consts::ARCH
            ));
        }
        let mut features: Vec<String> = X86_LEVELS[..=k]
            .iter()
            .flat_map(|(_, f)| f.iter().map(|s| s.to_string()))
            .collect();
        features.sort();
        Ok(Target {
            arch: "x86_64".to_string(),
            cpu: name.to_string(),
            features,
        })
    }

    /// The default target of an artifact on this machine.
    pub fn default_for_artifact() -> Target {
        Target::named(DEFAULT_LEVEL).unwrap_or_else(|_| Target::native())
    }

    /// Whether code for this target is generated by naming the CPU level (as opposed to the
    /// JIT's host CPU).
    pub fn is_level(&self) -> bool {
        self.cpu != "native"
    }

    /// Why the running machine cannot run code for this target, if it cannot. CUDA code is
    /// checked against the device when it is loaded (`crate::cuda::runs`), not here.
    pub fn unsupported_here(&self) -> Option<String> {
        if self.is_cuda() {
            return None;
        }
        if self.arch != std::env::consts::ARCH {
            return Some(format!(
                "it was compiled for {} and this machine is {}",
                self.arch,
                std::env::consts::ARCH
            ));
        }
        let host = host_features();
        let missing: Vec<&str> = self
            .features
            .iter()
            .map(String::as_str)
            .filter(|f| !host.contains(f))
            .collect();
        if missing.is_empty() {
            None
        } else {
            Some(format!(
                "it was compiled for CPU `{}` and this CPU lacks {}; rebuild it with \
                 `ftc build --target-cpu` naming a level this CPU has (x86-64-v2, x86-64-v3) or native",
                self.cpu,
                missing.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_include_the_ones_below() {
        let v3 = Target::named("x86-64-v3");
        if std::env::consts::ARCH != "x86_64" {
            assert!(v3.is_err());
            return;
        }
        let v3 = v3.unwrap();
        for f in ["sse2", "sse4.2", "avx2", "fma"] {
            assert!(v3.features.iter().any(|x| x == f), "{f}");
        }
        assert!(!v3.features.iter().any(|x| x == "avx512f"));
        assert!(Target::named("x86-64-v5")
            .unwrap_err()
            .contains("unknown target CPU"));
    }

    #[test]
    fn the_host_runs_native_code_and_not_a_missing_feature() {
        assert_eq!(Target::native().unsupported_here(), None);
        let mut t = Target::native();
        t.features.push("no-such-feature".into());
        assert!(t
            .unsupported_here()
            .unwrap()
            .contains("lacks no-such-feature"));
        t.arch = "riscv64".into();
        assert!(t
            .unsupported_here()
            .unwrap()
            .contains("compiled for riscv64"));
    }
}
