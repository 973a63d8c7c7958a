//! The numeric precision of a translation model's weights and matrix products: what the user
//! asks for (`--precision auto|int8|f32`) and what a model is built with.

use candle_core::Device;
use serde::Serialize;

/// What `--precision` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Int8 on the CPU (about 2× faster in a quarter of the memory), f32 on a GPU.
    #[default]
    Auto,
    Int8,
    F32,
}

/// The precision a model is built with; part of the translate stage's cache key and of the
/// brief's model line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightPrecision {
    F32,
    Int8,
}

impl WeightPrecision {
    pub fn name(self) -> &'static str {
        match self {
            WeightPrecision::F32 => "f32",
            WeightPrecision::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for WeightPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `--precision int8` with a GPU: the int8 kernels are CPU kernels.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--precision int8 runs on the CPU only, but the device is {device}; use --precision f32 \
     (or auto) on a GPU, or --device cpu"
)]
pub struct Int8NeedsCpu {
    pub device: String,
}

impl Precision {
    /// The precision for models on `device` (named `device_name` in the error).
    pub fn resolve(
        self,
        device: &Device,
        device_name: &str,
    ) -> Result<WeightPrecision, Int8NeedsCpu> {
        match (self, device.is_cpu()) {
            (Precision::F32, _) | (Precision::Auto, false) => Ok(WeightPrecision::F32),
            (Precision::Int8 | Precision::Auto, true) => Ok(WeightPrecision::Int8),
            (Precision::Int8, false) => Err(Int8NeedsCpu {
                device: device_name.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_int8_on_the_cpu() {
        let cpu = Device::Cpu;
        assert_eq!(
            Precision::Auto.resolve(&cpu, "cpu"),
            Ok(WeightPrecision::Int8)
        );
        assert_eq!(
            Precision::F32.resolve(&cpu, "cpu"),
            Ok(WeightPrecision::F32)
        );
    }

    #[test]
    fn the_precision_is_keyed_by_its_lowercase_name() {
        assert_eq!(
            serde_json::to_string(&WeightPrecision::Int8).unwrap(),
            "\"int8\""
        );
        assert_eq!(WeightPrecision::F32.to_string(), "f32");
    }
}
