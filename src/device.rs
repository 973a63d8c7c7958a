//! `--device` → the candle device every model runs on, and the name the brief's header shows.
//!
//! `auto` takes the first GPU backend this binary was built with (`--features cuda`, then
//! `metal`) whose device 0 opens, else the CPU; it never fails, and when a built-in backend
//! cannot be opened it says why on stderr (a CUDA build on a machine whose driver is missing
//! would otherwise run on the CPU without a word). An explicit `cuda`/`metal` that cannot be
//! had is a usage error naming the way out.
//!
//! Device-specific model code keys off the device it is handed: the Marian CPU LM head over
//! panels (`models::marian::PanelMatrix`) is used only on `Device::Cpu` in f32, every other
//! device takes candle's tensor matmul; gemm's AVX kernels are candle's CPU backend only.

use candle_core::Device;

/// A GPU backend candle can be built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gpu {
    Cuda,
    Metal,
}

impl Gpu {
    /// The cargo feature that builds this backend in.
    fn feature(self) -> &'static str {
        match self {
            Gpu::Cuda => "cuda",
            Gpu::Metal => "metal",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Gpu::Cuda => "CUDA",
            Gpu::Metal => "Metal",
        }
    }

    /// Whether this binary was built with the backend.
    pub fn built_in(self) -> bool {
        match self {
            Gpu::Cuda => candle_core::utils::cuda_is_available(),
            Gpu::Metal => candle_core::utils::metal_is_available(),
        }
    }

    /// How to get a build with this backend, besides cargo.
    fn build_hint(self) -> &'static str {
        match self {
            Gpu::Cuda => " (scripts/gpu/build-cuda.sh builds one where no CUDA is installed)",
            Gpu::Metal => "",
        }
    }

    /// Where to look first when device 0 does not open.
    fn hint(self) -> &'static str {
        match self {
            Gpu::Cuda => "check the NVIDIA driver with `nvidia-smi`",
            Gpu::Metal => "Metal needs an Apple GPU",
        }
    }
}

/// Why a GPU backend cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuUnavailable {
    #[error(
        "--device {feature}: this polybrief was built without the `{feature}` feature; rebuild \
         with `cargo install --features {feature}`{extra} or use --device cpu",
        feature = .0.feature(),
        extra = .0.build_hint()
    )]
    NotBuilt(Gpu),
    #[error("--device {feature}: {label} device 0 cannot be opened ({reason}); {hint}, or use --device cpu",
        feature = .gpu.feature(), label = .gpu.label(), hint = .gpu.hint())]
    CannotOpen { gpu: Gpu, reason: String },
}

impl GpuUnavailable {
    /// The line `--device auto` logs before it runs on the CPU.
    pub fn auto_fallback_note(&self) -> String {
        match self {
            GpuUnavailable::NotBuilt(gpu) => format!(
                "--device auto: no {} in this build; running on the CPU",
                gpu.label()
            ),
            GpuUnavailable::CannotOpen { gpu, reason } => {
                format!(
                    "--device auto: {} device 0 cannot be opened ({reason}); running on the CPU",
                    gpu.label()
                )
            }
        }
    }
}

/// A device the models can run on, with its name for the brief ("cpu", "cuda:0").
pub struct Selected {
    pub device: Device,
    pub name: String,
}

impl Selected {
    pub fn cpu() -> Selected {
        Selected {
            device: Device::Cpu,
            name: "cpu".to_string(),
        }
    }
}

/// Device 0 of `gpu`.
pub fn open(gpu: Gpu) -> Result<Selected, GpuUnavailable> {
    if !gpu.built_in() {
        return Err(GpuUnavailable::NotBuilt(gpu));
    }
    let opened = match gpu {
        Gpu::Cuda => Device::new_cuda(0),
        Gpu::Metal => Device::new_metal(0),
    };
    let device = opened.map_err(|e| GpuUnavailable::CannotOpen {
        gpu,
        reason: without_backtrace(e),
    })?;
    Ok(Selected {
        device,
        name: format!("{}:0", gpu.feature()),
    })
}

/// The error's own words: candle appends a backtrace when RUST_BACKTRACE is set, which would
/// turn a one-line usage error into forty.
fn without_backtrace(error: candle_core::Error) -> String {
    match error {
        candle_core::Error::WithBacktrace { inner, .. } => inner.to_string(),
        other => other.to_string(),
    }
}

/// The GPU when one is built in and present, else the CPU; never fails. Each built-in backend
/// that is present in the binary but cannot be opened is reported through `warn`.
pub fn auto(mut warn: impl FnMut(&GpuUnavailable)) -> Selected {
    for gpu in [Gpu::Cuda, Gpu::Metal] {
        match open(gpu) {
            Ok(selected) => return selected,
            Err(GpuUnavailable::NotBuilt(_)) => {}
            Err(why) => warn(&why),
        }
    }
    Selected::cpu()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unopenable_cuda_device_names_the_cause_and_the_way_out() {
        let why = GpuUnavailable::CannotOpen {
            gpu: Gpu::Cuda,
            reason: "DriverError(CUDA_ERROR_NO_DEVICE)".into(),
        };
        assert_eq!(
            why.to_string(),
            "--device cuda: CUDA device 0 cannot be opened (DriverError(CUDA_ERROR_NO_DEVICE)); check the \
             NVIDIA driver with `nvidia-smi`, or use --device cpu"
        );
    }

    #[test]
    fn auto_says_it_falls_back_to_the_cpu_and_why() {
        let why = GpuUnavailable::CannotOpen {
            gpu: Gpu::Cuda,
            reason: "DriverError(CUDA_ERROR_NO_DEVICE)".into(),
        };
        assert_eq!(
            why.auto_fallback_note(),
            "--device auto: CUDA device 0 cannot be opened (DriverError(CUDA_ERROR_NO_DEVICE)); running on the CPU"
        );
    }

    #[test]
    fn a_device_error_is_reported_without_candles_backtrace() {
        let error = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg(
                "no CUDA-capable device is detected".into(),
            )),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert_eq!(
            without_backtrace(error),
            "no CUDA-capable device is detected"
        );
    }

    #[test]
    fn a_backend_not_built_in_says_how_to_build_it() {
        assert_eq!(
            GpuUnavailable::NotBuilt(Gpu::Cuda).to_string(),
            "--device cuda: this polybrief was built without the `cuda` feature; rebuild with `cargo \
             install --features cuda` (scripts/gpu/build-cuda.sh builds one where no CUDA is installed) \
             or use --device cpu"
        );
        assert_eq!(
            GpuUnavailable::NotBuilt(Gpu::Metal).to_string(),
            "--device metal: this polybrief was built without the `metal` feature; rebuild with `cargo \
             install --features metal` or use --device cpu"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_is_refused_by_a_build_without_it() {
        assert_eq!(
            open(Gpu::Cuda).err(),
            Some(GpuUnavailable::NotBuilt(Gpu::Cuda))
        );
    }

    #[cfg(not(any(feature = "cuda", feature = "metal")))]
    #[test]
    fn auto_in_a_cpu_only_build_runs_on_the_cpu_without_a_warning() {
        let mut warnings = Vec::new();
        let selected = auto(|why| warnings.push(why.to_string()));
        assert!(selected.device.is_cpu());
        assert_eq!(selected.name, "cpu");
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
