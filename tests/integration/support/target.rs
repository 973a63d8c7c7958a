//! What the model tests run on and read from, so that the same test binary runs in the
//! checkout (the defaults) and, built with `--features cuda` by scripts/gpu/build-cuda.sh, on a
//! GPU machine that has the packed folder but no checkout and no Rust:
//! - `POLYBRIEF_TEST_DEVICE`: `cpu` (the default) or `cuda` (device 0).
//! - `POLYBRIEF_TEST_ROOT`: the folder holding `tests/fixtures/` (default: this checkout).
//! - `POLYBRIEF_TEST_BIN`: the polybrief binary the tests run (default: cargo's).

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::Device;

/// The device named by `POLYBRIEF_TEST_DEVICE`, made once per test binary (a CUDA context is
/// costly). A name this build cannot run on fails the test with the reason, never falls back:
/// a GPU check that silently ran on the CPU would prove nothing.
pub fn test_device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| match std::env::var("POLYBRIEF_TEST_DEVICE").as_deref() {
            Err(_) | Ok("") | Ok("cpu") => Device::Cpu,
            Ok("cuda") => Device::new_cuda(0).unwrap_or_else(|e| {
                panic!("POLYBRIEF_TEST_DEVICE=cuda but CUDA device 0 cannot be opened (is this a --features cuda build on a machine with an NVIDIA driver?): {e}")
            }),
            Ok(other) => panic!("POLYBRIEF_TEST_DEVICE={other}: expected cpu or cuda"),
        })
        .clone()
}

/// The folder the committed fixtures are read from.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("POLYBRIEF_TEST_ROOT").filter(|root| !root.is_empty()) {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// The polybrief binary under test.
pub fn polybrief_bin() -> PathBuf {
    match std::env::var_os("POLYBRIEF_TEST_BIN").filter(|bin| !bin.is_empty()) {
        Some(bin) => PathBuf::from(bin),
        None => PathBuf::from(env!("CARGO_BIN_EXE_polybrief")),
    }
}
