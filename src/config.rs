//! Global flags turned, once, into the validated context every subcommand runs with:
//! the model catalog, hub settings, the device and where stage results are cached.

use std::path::PathBuf;

use candle_core::Device;

use crate::cache::StageCache;
use crate::device;
use crate::error::{Error, Result};
use crate::models::catalog::Catalog;
use crate::models::hub::{HubError, HubSettings, ModelStore};
use crate::progress::Reporter;

/// The global flags, as plain values (from `cli::GlobalArgs`).
#[derive(Clone, Debug, Default)]
pub struct GlobalOptions {
    /// A catalog file whose entries override or extend the built-in one.
    pub models: Option<PathBuf>,
    /// Never use the network.
    pub offline: bool,
    pub device: DeviceChoice,
    /// Where stage results are cached; default [`StageCache::default_dir`].
    pub cache_dir: Option<PathBuf>,
}

/// Where to run the models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A GPU when polybrief was built with one and one is present, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

/// How articles are summarized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SummarizerChoice {
    /// The instruct LLM when it can be had, else extractive (with a note).
    #[default]
    Auto,
    /// The instruct LLM; fails if it cannot be had.
    Llm,
    /// Sentence ranking over the English text; needs no model.
    Extractive,
}

/// What every subcommand needs, built from the global flags and the environment.
pub struct Context {
    pub catalog: Catalog,
    pub hub: HubSettings,
    pub device: Device,
    /// A human-readable name of the device for the brief ("cpu", "cuda:0").
    pub device_name: String,
    pub cache_dir: PathBuf,
    pub reporter: Reporter,
}

impl Context {
    pub fn new(global: &GlobalOptions, reporter: Reporter) -> Result<Context> {
        let mut catalog = Catalog::builtin().map_err(HubError::from)?;
        if let Some(path) = &global.models {
            catalog = catalog.with_overrides(path).map_err(HubError::from)?;
        }
        let hub = HubSettings::from_env(global.offline);
        let (device, device_name) = select_device(global.device)?;
        let cache_dir = match &global.cache_dir {
            Some(dir) => dir.clone(),
            None => StageCache::default_dir()?,
        };
        Ok(Context {
            catalog,
            hub,
            device,
            device_name,
            cache_dir,
            reporter,
        })
    }

    /// The model store that fetches (or, offline, finds) the catalog's files.
    pub fn model_store(&self) -> ModelStore {
        ModelStore::new(self.hub.clone(), self.reporter.clone())
    }
}

/// Maps `--device` to a candle device and its name (see [`crate::device`]).
fn select_device(choice: DeviceChoice) -> Result<(Device, String)> {
    let selected = match choice {
        DeviceChoice::Cpu => device::Selected::cpu(),
        DeviceChoice::Cuda => {
            device::open(device::Gpu::Cuda).map_err(|e| Error::Usage(e.to_string()))?
        }
        DeviceChoice::Metal => {
            device::open(device::Gpu::Metal).map_err(|e| Error::Usage(e.to_string()))?
        }
        DeviceChoice::Auto => device::auto(|why| log::warn!("{}", why.auto_fallback_note())),
    };
    Ok((selected.device, selected.name))
}
