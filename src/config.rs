//! Global flags turned, once, into the validated context every subcommand runs with:
//! the model catalog, hub settings, the device and where stage results are cached.

use std::path::PathBuf;

use candle_core::Device;

use crate::cli::{DeviceChoice, GlobalArgs};
use crate::device;
use crate::error::{Error, Result};
use crate::models::catalog::Catalog;
use crate::models::hub::{HubError, HubSettings, ModelStore};
use crate::progress::Reporter;

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
    pub fn from_cli(global: &GlobalArgs, reporter: Reporter) -> Result<Context> {
        let mut catalog = Catalog::builtin().map_err(HubError::from)?;
        if let Some(path) = &global.models {
            catalog = catalog.with_overrides(path).map_err(HubError::from)?;
        }
        let hub = HubSettings::from_env(global.offline);
        let (device, device_name) = select_device(global.device)?;
        let cache_dir = match &global.cache_dir {
            Some(dir) => dir.clone(),
            None => default_cache_dir()?,
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

/// `$XDG_CACHE_HOME/polybrief`, else `~/.cache/polybrief`.
fn default_cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("polybrief"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("polybrief")),
        None => Err(Error::Usage(
            "cannot find a cache folder: HOME is not set; pass --cache-dir DIR".to_string(),
        )),
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
