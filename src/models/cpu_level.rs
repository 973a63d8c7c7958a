//! Which family of polybrief's own CPU kernels (int8 and f32 products, attention, the
//! softmax normaliser) this CPU runs, decided once per process.
//!
//! Detected at run time with `is_x86_feature_detected!`, so one binary uses AVX-512 VNNI on a
//! Xeon and AVX2 on an EPYC. The AVX2 levels include FMA, which every AVX2 CPU has. `POLYBRIEF_CPU_LEVEL` caps the level (never raises it above what
//! the CPU has), so that one machine can measure every family: `avx512` (the default cap),
//! `avxvnni`, `avx2`, `scalar`.

use std::sync::OnceLock;

/// The environment variable that caps the kernel level.
pub const CPU_LEVEL_ENV: &str = "POLYBRIEF_CPU_LEVEL";

/// An int8 kernel family, weakest first (the order is the capping order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuLevel {
    /// Portable Rust: the reference every other kernel must equal exactly.
    Scalar,
    /// AVX2 `vpmaddubsw`/`vpmaddwd` on |a| and sign(w, a) (no 16-bit saturation).
    Avx2,
    /// AVX2 registers with AVX-VNNI `vpdpbusd` (u8 activations, offset corrected).
    AvxVnni,
    /// AVX-512 BW with AVX512-VNNI `vpdpbusd` (u8 activations, offset corrected).
    Avx512Vnni,
}

impl CpuLevel {
    /// The name `POLYBRIEF_CPU_LEVEL` takes and the bench prints.
    pub fn name(self) -> &'static str {
        match self {
            CpuLevel::Scalar => "scalar",
            CpuLevel::Avx2 => "avx2",
            CpuLevel::AvxVnni => "avxvnni",
            CpuLevel::Avx512Vnni => "avx512vnni",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(CpuLevel::Scalar),
            "avx2" => Some(CpuLevel::Avx2),
            "avxvnni" | "avx-vnni" | "avx_vnni" => Some(CpuLevel::AvxVnni),
            "avx512" | "avx512vnni" | "avx512_vnni" => Some(CpuLevel::Avx512Vnni),
            _ => None,
        }
    }

    /// The best level this CPU supports.
    pub fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                return CpuLevel::Avx512Vnni;
            }
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2 && is_x86_feature_detected!("avxvnni") {
                return CpuLevel::AvxVnni;
            }
            if avx2 {
                return CpuLevel::Avx2;
            }
        }
        CpuLevel::Scalar
    }

    /// The detected level capped by `cap` (the value of `POLYBRIEF_CPU_LEVEL`, if set). An
    /// unknown value is ignored with a warning rather than failing a run.
    pub fn capped(detected: Self, cap: Option<&str>) -> Self {
        match cap.map(|c| (c, Self::parse(c))) {
            None => detected,
            Some((_, Some(cap))) => detected.min(cap),
            Some((raw, None)) => {
                log::warn!(
                    "{CPU_LEVEL_ENV}={raw} is not one of avx512, avxvnni, avx2, scalar; ignored"
                );
                detected
            }
        }
    }

    /// The level the kernels use in this process.
    pub fn current() -> Self {
        static LEVEL: OnceLock<CpuLevel> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            let cap = std::env::var(CPU_LEVEL_ENV).ok();
            Self::capped(Self::detected(), cap.as_deref())
        })
    }

    /// Every level this CPU can run, weakest first (what the kernel tests compare).
    pub fn available() -> Vec<Self> {
        let best = Self::detected();
        [
            CpuLevel::Scalar,
            CpuLevel::Avx2,
            CpuLevel::AvxVnni,
            CpuLevel::Avx512Vnni,
        ]
        .into_iter()
        .filter(|level| *level <= best && level.runs_here())
        .collect()
    }

    /// Whether this CPU has the instructions of this level (AVX-512 VNNI does not imply
    /// AVX-VNNI: Ice Lake servers have the first and not the second).
    fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                CpuLevel::Scalar => true,
                CpuLevel::Avx2 => {
                    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
                }
                CpuLevel::AvxVnni => {
                    is_x86_feature_detected!("avx2")
                        && is_x86_feature_detected!("fma")
                        && is_x86_feature_detected!("avxvnni")
                }
                CpuLevel::Avx512Vnni => Self::detected() == CpuLevel::Avx512Vnni,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == CpuLevel::Scalar
        }
    }
}

/// Which register width a kernel with an AVX2 and an AVX-512 form runs (polybrief's Q4K and
/// Q6K tiles, the Q6K row kernel): the two forms give the same bits, tested for each kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// 256-bit registers, AVX2.
    Avx2,
    /// 512-bit registers, AVX-512 BW and VNNI.
    Avx512,
}

impl Width {
    /// The width of this process's [`CpuLevel`]: AVX-512 where the level is AVX-512 VNNI.
    pub(crate) fn current() -> Width {
        if CpuLevel::current() == CpuLevel::Avx512Vnni {
            Width::Avx512
        } else {
            Width::Avx2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_lowers_the_level_but_never_raises_it() {
        assert_eq!(
            CpuLevel::capped(CpuLevel::Avx512Vnni, Some("avx2")),
            CpuLevel::Avx2
        );
        assert_eq!(
            CpuLevel::capped(CpuLevel::Avx2, Some("avx512")),
            CpuLevel::Avx2
        );
        assert_eq!(
            CpuLevel::capped(CpuLevel::AvxVnni, Some("SCALAR")),
            CpuLevel::Scalar
        );
    }

    #[test]
    fn an_unknown_cap_keeps_the_detected_level() {
        assert_eq!(
            CpuLevel::capped(CpuLevel::Avx2, Some("sse9")),
            CpuLevel::Avx2
        );
        assert_eq!(CpuLevel::capped(CpuLevel::Avx2, None), CpuLevel::Avx2);
    }
}
