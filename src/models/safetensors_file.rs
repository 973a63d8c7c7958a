//! Reads a `.safetensors` file tensor by tensor with positioned reads, for candle's
//! `VarBuilder`.
//!
//! Why not candle's memory map: every page of a mapped file that a load touches counts in the
//! process's resident set until the map goes, so loading opus-mt-de-en (300 MB of f32) through
//! the map peaks at the map plus the model's own copy, about twice the weights, and an int8
//! model's peak would be the f32 file however small the int8 weights are. Read this way, only
//! the tensor being converted is resident beside what is already built; the file's pages stay
//! in the kernel's page cache, which is not the process's memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use serde::Deserialize;

/// One entry of the file's JSON header.
#[derive(Debug, Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// An open safetensors file and its header.
pub struct SafetensorsFile {
    /// Behind a lock because reads seek; the model loads one tensor at a time anyway.
    file: Mutex<File>,
    path: PathBuf,
    /// Where the tensor data starts: after the 8-byte length and the header.
    data_start: u64,
    entries: HashMap<String, Entry>,
}

fn err(path: &Path, what: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::msg(format!("{}: {what}", path.display()))
}

impl SafetensorsFile {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| err(path, e))?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)
            .map_err(|e| err(path, format!("no safetensors header: {e}")))?;
        let header_len = u64::from_le_bytes(len);
        let file_len = file.metadata().map_err(|e| err(path, e))?.len();
        if header_len > file_len.saturating_sub(8) {
            return Err(err(path, "the safetensors header is longer than the file"));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(|e| err(path, e))?;
        let mut raw: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| err(path, format!("the safetensors header is not JSON: {e}")))?;
        raw.remove("__metadata__");
        let entries = raw
            .into_iter()
            .map(|(name, value)| {
                let entry: Entry = serde_json::from_value(value)
                    .map_err(|e| err(path, format!("tensor {name}: {e}")))?;
                Ok((name, entry))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            file: Mutex::new(file),
            path: path.to_path_buf(),
            data_start: 8 + header_len,
            entries,
        })
    }

    /// Reads tensor `name` onto `device` in its stored dtype.
    fn load(&self, name: &str, device: &Device) -> Result<Tensor> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| err(&self.path, format!("no tensor named {name}")))?;
        let dtype = match entry.dtype.as_str() {
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "F64" => DType::F64,
            "I64" => DType::I64,
            "U32" => DType::U32,
            "U8" => DType::U8,
            other => return Err(err(&self.path, format!("tensor {name} has dtype {other}"))),
        };
        let [start, end] = entry.data_offsets;
        let count: usize = entry.shape.iter().product();
        if end < start || (end - start) as usize != count * dtype.size_in_bytes() {
            return Err(err(
                &self.path,
                format!("tensor {name} has inconsistent offsets"),
            ));
        }
        let shape = Shape::from(entry.shape.clone());
        let read_err = |e: std::io::Error| err(&self.path, format!("tensor {name}: {e}"));
        let mut file = self
            .file
            .lock()
            .map_err(|_| err(&self.path, "a reader panicked"))?;
        file.seek(SeekFrom::Start(self.data_start + start))
            .map_err(read_err)?;
        if dtype == DType::F32 {
            // Straight into the f32 vector the tensor will own, through a small buffer, so a
            // 119 MB embedding costs 119 MB and not twice that.
            let mut values = Vec::with_capacity(count);
            let mut buf = vec![0u8; 1 << 16];
            let mut left = count * 4;
            while left > 0 {
                let n = left.min(buf.len());
                file.read_exact(&mut buf[..n]).map_err(read_err)?;
                values.extend(
                    buf[..n]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                left -= n;
            }
            Tensor::from_vec(values, shape, device)
        } else {
            let mut bytes = vec![0u8; count * dtype.size_in_bytes()];
            file.read_exact(&mut bytes).map_err(read_err)?;
            Tensor::from_raw_buffer(&bytes, dtype, shape.dims(), device)
        }
    }
}

impl SafetensorsFile {
    /// The shape of tensor `name` if it is a 2-D f32 matrix (what [`read_f32_rows`] reads).
    ///
    /// [`read_f32_rows`]: Self::read_f32_rows
    pub fn f32_matrix_shape(&self, name: &str) -> Option<(usize, usize)> {
        let entry = self.entries.get(name)?;
        match (entry.dtype.as_str(), entry.shape.as_slice()) {
            ("F32", &[rows, cols]) => Some((rows, cols)),
            _ => None,
        }
    }

    /// Fills `out` with whole rows of the f32 tensor `name`, starting at row `first_row`:
    /// a part of a matrix, for code that converts one as it is read (an int8 embedding then
    /// never holds the f32 matrix whole).
    pub fn read_f32_rows(&self, name: &str, first_row: usize, out: &mut [f32]) -> Result<()> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| err(&self.path, format!("no tensor named {name}")))?;
        if entry.dtype != "F32" {
            return Err(err(
                &self.path,
                format!("tensor {name} has dtype {}, not F32", entry.dtype),
            ));
        }
        let cols: usize = entry.shape.iter().skip(1).product();
        let rows = entry.shape.first().copied().unwrap_or(0);
        let [start, end] = entry.data_offsets;
        let wanted_rows = out.len().checked_div(cols).unwrap_or(0);
        if cols == 0
            || !out.len().is_multiple_of(cols)
            || first_row + wanted_rows > rows
            || end < start
            || (end - start) as usize != rows * cols * 4
        {
            return Err(err(
                &self.path,
                format!(
                    "tensor {name} {:?} has no rows {first_row}..{}",
                    entry.shape,
                    first_row + wanted_rows
                ),
            ));
        }
        let read_err = |e: std::io::Error| err(&self.path, format!("tensor {name}: {e}"));
        let mut file = self
            .file
            .lock()
            .map_err(|_| err(&self.path, "a reader panicked"))?;
        file.seek(SeekFrom::Start(
            self.data_start + start + (first_row * cols * 4) as u64,
        ))
        .map_err(read_err)?;
        let mut buf = vec![0u8; 1 << 16];
        for values in out.chunks_mut(buf.len() / 4) {
            let bytes = &mut buf[..values.len() * 4];
            file.read_exact(bytes).map_err(read_err)?;
            for (v, b) in values.iter_mut().zip(bytes.chunks_exact(4)) {
                *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Ok(())
    }
}

/// A [`SafetensorsFile`] shared between a `VarBuilder` and code that reads rows of it.
pub struct SharedSafetensors(pub Arc<SafetensorsFile>);

impl SimpleBackend for SharedSafetensors {
    fn get(
        &self,
        s: Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        self.0.get(s, name, init, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.0.get_unchecked(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_tensor(name)
    }
}

impl SimpleBackend for SafetensorsFile {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let tensor = self.load(name, dev)?.to_dtype(dtype)?;
        if tensor.shape() != &s {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: s,
                got: tensor.shape().clone(),
            });
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.load(name, dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}
