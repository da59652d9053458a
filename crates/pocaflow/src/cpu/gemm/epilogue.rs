//! The GEMM's epilogue: a bias added along one axis of C and an activation, applied to each
//! result tile right after its last k-panel has been accumulated, while the tile is still in
//! cache (the kernels' own stores are the only other pass over it).

use super::MatPtrMut;
use crate::cpu::activation;
use crate::plan::Activation;

/// Element types the epilogue computes on (`f32`, `f64`).
pub trait EpilogueScalar: Copy + std::ops::Add<Output = Self> {
    /// `act(x)` with the CPU's activation functions.
    fn activate(act: Activation, x: Self) -> Self;
}

macro_rules! epilogue_scalar {
    ($($t:ty),*) => {$(
        impl EpilogueScalar for $t {
            #[inline(always)]
            fn activate(act: Activation, x: $t) -> $t {
                match act {
                    Activation::Relu => activation::relu(x),
                    Activation::Gelu => activation::gelu(x),
                    Activation::GeluTanh => activation::gelu_tanh(x),
                }
            }
        }
    )*};
}
epilogue_scalar!(f32, f64);

/// A bias vector by raw pointer: element `i` at `ptr + i * inc`, added along C's rows
/// (`rows`: element `(i, j)` gets `bias[i]`) or columns (`bias[j]`).
#[derive(Debug, Clone, Copy)]
struct Bias<T> {
    ptr: *const T,
    inc: isize,
    rows: bool,
}

/// What the GEMM does to each element of C after the product: `act(c + bias)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epilogue<T> {
    bias: Option<Bias<T>>,
    act: Option<Activation>,
}

// SAFETY: the bias is only read, by every thread, while the GEMM that owns the epilogue runs
// (its caller keeps the vector alive and unmodified meanwhile).
unsafe impl<T: Sync> Send for Epilogue<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Epilogue<T> {}

impl<T: EpilogueScalar> Epilogue<T> {
    /// The plain product.
    pub(crate) const NONE: Epilogue<T> = Epilogue {
        bias: None,
        act: None,
    };

    /// `act(C[i, j] + bias[j])`, the bias (if any) `n` elements at `ptr + j * inc`.
    pub(crate) fn new(bias: Option<(*const T, isize)>, act: Option<Activation>) -> Epilogue<T> {
        Epilogue {
            bias: bias.map(|(ptr, inc)| Bias {
                ptr,
                inc,
                rows: false,
            }),
            act,
        }
    }

    /// Whether it changes nothing.
    pub(crate) fn is_none(&self) -> bool {
        self.bias.is_none() && self.act.is_none()
    }

    /// The same epilogue on `C^T`.
    pub(crate) fn t(self) -> Epilogue<T> {
        Epilogue {
            bias: self.bias.map(|b| Bias { rows: !b.rows, ..b }),
            ..self
        }
    }

    /// The same epilogue on the block of C that starts at row `i0`, column `j0`.
    ///
    /// # Safety
    /// The bias must have an element at the shifted start (the block is inside C).
    pub(crate) unsafe fn shifted(self, i0: usize, j0: usize) -> Epilogue<T> {
        Epilogue {
            bias: self.bias.map(|b| Bias {
                // SAFETY: forwarded from the caller.
                ptr: unsafe {
                    b.ptr
                        .offset((if b.rows { i0 } else { j0 }) as isize * b.inc)
                },
                ..b
            }),
            ..self
        }
    }

    /// Applies the epilogue to the `rows x cols` tile of C at `(i0, j0)`.
    ///
    /// # Safety
    /// The tile is inside C (and the bias covers it), readable and writable by this thread
    /// alone meanwhile.
    #[inline]
    pub(crate) unsafe fn apply(
        &self,
        c: MatPtrMut<T>,
        i0: usize,
        j0: usize,
        rows: usize,
        cols: usize,
    ) {
        if self.is_none() {
            return;
        }
        let one = |i: usize, j: usize| {
            // SAFETY: (i, j) is inside C, and its bias element inside the bias.
            unsafe {
                let p = c.at(i, j);
                let mut v = *p;
                if let Some(b) = self.bias {
                    v = v + *b.ptr.offset((if b.rows { i } else { j }) as isize * b.inc);
                }
                if let Some(act) = self.act {
                    v = T::activate(act, v);
                }
                *p = v;
            }
        };
        // Along C's unit stride innermost.
        if c.cs.unsigned_abs() == 1 && c.rs.unsigned_abs() != 1 {
            for i in i0..i0 + rows {
                for j in j0..j0 + cols {
                    one(i, j);
                }
            }
        } else {
            for j in j0..j0 + cols {
                for i in i0..i0 + rows {
                    one(i, j);
                }
            }
        }
    }

    /// Applies the epilogue to all of an `m x n` C in blocks of rows, `threads` at a time
    /// (for products computed elsewhere, such as by the system BLAS).
    ///
    /// # Safety
    /// As for [`Self::apply`] with the whole of C.
    #[cfg(any(feature = "blas", feature = "accelerate"))]
    pub(crate) unsafe fn apply_all(&self, c: MatPtrMut<T>, m: usize, n: usize, threads: usize)
    where
        T: Send + Sync,
    {
        if self.is_none() || m == 0 || n == 0 {
            return;
        }
        /// Rows per block: one block is a few hundred KiB at most for typical widths.
        const ROWS: usize = 64;
        let threads = if m * n < 1 << 16 { 1 } else { threads.max(1) };
        // SAFETY: each block is a disjoint set of rows of C.
        super::par::for_each(threads, (0..m).step_by(ROWS), |i0| unsafe {
            self.apply(c, i0, 0, ROWS.min(m - i0), n)
        });
    }
}
