//! A linear layer `y = x Wᵀ + b` on [`Int8Matrix`] weights, taking and returning candle
//! tensors so that model code can swap it in for an f32 projection.

use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor};

use super::Int8Matrix;

#[derive(Clone, Debug)]
pub struct Int8Linear {
    weight: Arc<Int8Matrix>,
    bias: Option<Vec<f32>>,
}

impl Int8Linear {
    /// Quantizes `weight` `(out, in)` (any float dtype, on the CPU); `bias` is `(out,)`.
    pub fn quantize(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let matrix = Int8Matrix::from_tensor(weight)?;
        let bias = bias.map(cpu_values).transpose()?;
        Ok(Self::from_matrix(Arc::new(matrix), bias))
    }

    /// A layer over an already quantized matrix (shared with an embedding, for a tied head).
    pub fn from_matrix(weight: Arc<Int8Matrix>, bias: Option<Vec<f32>>) -> Self {
        Self { weight, bias }
    }

    pub fn out_features(&self) -> usize {
        self.weight.rows()
    }

    /// `(…, in)` → `(…, out)`, on the CPU.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims();
        let mut out_dims = dims.to_vec();
        match out_dims.last_mut() {
            Some(last) => *last = self.weight.rows(),
            None => candle_core::bail!("an int8 linear layer needs at least one dimension"),
        }
        let values = self.forward_values(xs)?;
        Tensor::from_vec(values, out_dims, &Device::Cpu)
    }

    /// The output as row-major f32 values, `rows × out`.
    pub fn forward_values(&self, xs: &Tensor) -> Result<Vec<f32>> {
        let in_dim = xs.dims().last().copied().unwrap_or(0);
        if in_dim != self.weight.cols() {
            candle_core::bail!(
                "int8 linear layer expects {} features, got {in_dim}",
                self.weight.cols()
            );
        }
        let rows = xs.elem_count() / in_dim.max(1);
        self.forward_rows(&cpu_values(xs)?, rows)
    }

    /// `x` `(rows, in)` row-major → `(rows, out)` row-major.
    pub fn forward_rows(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        if x.len() != rows * self.weight.cols() {
            candle_core::bail!(
                "int8 linear layer expects {rows} × {} values, got {}",
                self.weight.cols(),
                x.len()
            );
        }
        Ok(self.weight.matmul_t(x, rows, self.bias.as_deref()))
    }
}

impl Int8Matrix {
    /// Quantizes a `(rows, cols)` CPU tensor, reading its values in place (a 58k-row
    /// embedding is not copied once more on the way).
    pub fn from_tensor(weight: &Tensor) -> Result<Self> {
        let (rows, cols) = weight.dims2()?;
        let weight = weight.to_dtype(DType::F32)?.contiguous()?;
        let (storage, layout) = weight.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cpu(cpu) => {
                let values = cpu.as_slice::<f32>()?;
                let start = layout.start_offset();
                Ok(Self::quantize(
                    &values[start..start + rows * cols],
                    rows,
                    cols,
                ))
            }
            _ => candle_core::bail!("int8 weights are built on the CPU"),
        }
    }
}

/// A CPU tensor's values as row-major f32.
fn cpu_values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}
