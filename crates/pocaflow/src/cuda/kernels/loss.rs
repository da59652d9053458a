//! The `loss` modules (`math.cuh` + `loss.cu`), one per float dtype, compiled on first use,
//! and their launches.

use super::elementwise::MATH;
use super::{c_type, function, launch, load_module, Function, Kernels, COMMON, CONVERT};
use crate::cuda::stream::StreamInner;
use crate::dtype::DType;
use crate::error::Result;
use std::ffi::c_void;

const LOSS: &str = include_str!("loss.cu");

/// Threads per block of the loss kernels (8 warps, a row each).
const LOSS_THREADS: u32 = 256;

/// The kernels of one float dtype.
#[derive(Debug)]
pub(crate) struct LossModule {
    loss: Function,
    grad: Function,
}

impl Kernels {
    /// The `loss` module of `dtype` (compiled on first use).
    pub(crate) fn loss_module(&self, dtype: DType) -> Result<&LossModule> {
        self.loss[dtype as usize]
            .get_or_init(|| {
                let name = format!("loss_{}", dtype.short_name());
                let defines = [
                    "--fmad=true".to_string(),
                    format!("-DELEM={}", c_type(dtype)),
                ];
                let m = load_module(
                    &name,
                    &format!("{COMMON}{CONVERT}{MATH}{LOSS}"),
                    &self.options(&defines),
                )?;
                Ok(LossModule {
                    loss: function(m, "cross_entropy_loss")?,
                    grad: function(m, "cross_entropy_grad")?,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Enqueues the cross-entropy of `rows` dense rows of `c` logits against their int64
    /// targets: per-row losses into `dst` (`grad` `None`), or the gradient rows times the
    /// scale (`Some`, an `f32` for half and `f32` rows, `f64` for `f64` rows); bad targets set
    /// the 32-byte flag at `err`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn cross_entropy(
        &self,
        stream: &StreamInner,
        m: &LossModule,
        (dst, logits, target): (u64, u64, u64),
        (rows, c): (usize, usize),
        grad: Option<f64>,
        f64_rows: bool,
        err: u64,
    ) -> Result<()> {
        let warps_per_block = (LOSS_THREADS / 32) as usize;
        let grid = (rows.div_ceil(warps_per_block).min(65_535) as u32, 1, 1);
        let (mut dst, mut logits, mut target, mut r64, mut c64, mut err) =
            (dst, logits, target, rows as i64, c as i64, err);
        match grad {
            None => {
                let mut p = params!(dst, logits, target, r64, c64, err);
                // SAFETY: `dst` holds `rows` elements, `logits` `rows * c`, `target` `rows`
                // int64, `err` 32 bytes, all live and stream-ordered; the parameters match
                // `cross_entropy_loss`.
                unsafe {
                    launch(
                        m.loss,
                        grid,
                        (LOSS_THREADS, 1, 1),
                        stream,
                        &mut p,
                        "cross_entropy",
                    )
                }
            }
            Some(scale) => {
                let (mut s32, mut s64) = (scale as f32, scale);
                let mut p32 = params!(dst, logits, target, r64, c64, s32, err);
                let mut p64 = params!(dst, logits, target, r64, c64, s64, err);
                let p = if f64_rows { &mut p64 } else { &mut p32 };
                // SAFETY: `dst` and `logits` hold `rows * c` elements, `target` `rows` int64,
                // `err` 32 bytes, all live and stream-ordered; the scale has the kernel's
                // accumulator type (double for f64 rows, else float); the parameters match
                // `cross_entropy_grad`.
                unsafe {
                    launch(
                        m.grad,
                        grid,
                        (LOSS_THREADS, 1, 1),
                        stream,
                        p,
                        "cross_entropy_backward",
                    )
                }
            }
        }
    }
}
