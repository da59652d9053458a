//! The plans that ops hand to backends: shapes and layouts worked out and validated once, so
//! that a backend only walks them.

use crate::error::{Error, Result};
use crate::layout::Layout;

/// Everything a backend needs for a matrix product: the sizes, the batch shape, and the
/// layouts of A, B and C, each with `batch.len() + 2` dimensions (broadcast batch dimensions
/// have stride 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatmulPlan {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Columns of B and C.
    pub n: usize,
    /// The broadcast batch shape.
    pub batch: Vec<usize>,
    /// A: `batch + [m, k]`.
    pub a: Layout,
    /// B: `batch + [k, n]`.
    pub b: Layout,
    /// C: `batch + [m, n]`.
    pub c: Layout,
    /// What happens to C (and the bias operand) around the product.
    pub epilogue: Epilogue,
}

/// An activation a matmul applies to each element of its result (see [`Epilogue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `max(x, 0)` ([`UnaryOp::Relu`]).
    Relu,
    /// The exact GELU, `x Φ(x)` ([`UnaryOp::Gelu`]).
    Gelu,
    /// The tanh approximation of GELU ([`UnaryOp::GeluTanh`]).
    GeluTanh,
}

impl Activation {
    /// Every activation.
    pub const ALL: &'static [Activation] =
        &[Activation::Relu, Activation::Gelu, Activation::GeluTanh];

    /// The public name (`"relu"`, `"gelu"`, `"gelu_tanh"`).
    pub fn name(self) -> &'static str {
        self.unary_op().name()
    }

    /// The activation of a public name, if it is one.
    pub fn from_name(name: &str) -> Option<Activation> {
        Activation::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// The elementwise op computing it.
    pub fn unary_op(self) -> UnaryOp {
        match self {
            Activation::Relu => UnaryOp::Relu,
            Activation::Gelu => UnaryOp::Gelu,
            Activation::GeluTanh => UnaryOp::GeluTanh,
        }
    }

    /// The elementwise op of its gradient: `op(dy, z)` is `act'(z) * dy`.
    pub fn backward_op(self) -> BinaryOp {
        match self {
            Activation::Relu => BinaryOp::ReluBackward,
            Activation::Gelu => BinaryOp::GeluBackward,
            Activation::GeluTanh => BinaryOp::GeluTanhBackward,
        }
    }
}

/// What a matmul does with its bias operand (a 1-D view of C's dtype).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BiasMode {
    /// There is no bias operand.
    #[default]
    None,
    /// `C[.., i, j] += bias[j]` (length `n`), before the activation.
    Add,
    /// The bias operand is an output: `bias[i] = Σ_p A[i, p]` (length `m`), the bias gradient
    /// of a linear layer when A is `dy^T`.
    RowSumsOfA,
}

/// The work a matmul fuses with its product: a bias, then an activation, applied to each
/// element of C once it holds its final sum (on CUDA cuBLASLt's epilogues, on the CPU each
/// result tile while it is still in cache). Plans with a non-trivial epilogue have no batch
/// dimensions, and an activation only with [`BiasMode::None`] or [`BiasMode::Add`]. With
/// `k = 0` the product is zero and the epilogue still applies (a bias gradient is then 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Epilogue {
    /// The bias operand's role.
    pub bias: BiasMode,
    /// The activation applied last.
    pub activation: Option<Activation>,
}

impl Epilogue {
    /// Whether the product is all there is.
    pub fn is_none(&self) -> bool {
        self.bias == BiasMode::None && self.activation.is_none()
    }
}

/// An integer-array index into `k` consecutive axes of a strided view (gather and scatter).
///
/// The view `base` has shape `S`; index arrays `0..k` (int64, each broadcast to
/// `index_shape` through its layout) select along axes `axis..axis + k`. The indexed result has
/// shape `S[..axis] + index_shape + S[axis + k..]`: element `(p, b, q)` is
/// `base[p, idx_0[b], ..., idx_{k-1}[b], q]`, a negative index counting from the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPlan {
    /// The view indexed into (the source of a gather, the destination of a scatter).
    pub base: Layout,
    /// The first indexed axis of `base`.
    pub axis: usize,
    /// The broadcast shape of the index arrays.
    pub index_shape: Vec<usize>,
    /// The layout of each index array, broadcast to `index_shape`.
    pub index_layouts: Vec<Layout>,
}

impl IndexPlan {
    /// A plan for index arrays of `index_shapes` (broadcast together) into `base` from `axis`.
    ///
    /// # Errors
    /// [`Error::Index`] if the index arrays do not broadcast together or index more axes than
    /// `base` has after `axis`.
    pub fn new(base: Layout, axis: usize, indices: &[Layout]) -> Result<IndexPlan> {
        let k = indices.len();
        if axis + k > base.ndim() {
            return Err(Error::Index(format!(
                "too many indices: {} integer arrays from axis {axis} of an array of {} \
                 dimensions",
                k,
                base.ndim()
            )));
        }
        let mut index_shape: Vec<usize> = Vec::new();
        for l in indices {
            index_shape =
                crate::layout::broadcast_shapes(&index_shape, l.shape()).ok_or_else(|| {
                    Error::Index(format!(
                        "shape mismatch: index arrays of shapes {} and {} cannot be broadcast \
                         together",
                        crate::layout::fmt_shape(&index_shape),
                        crate::layout::fmt_shape(l.shape())
                    ))
                })?;
        }
        let index_layouts = indices
            .iter()
            .map(|l| l.broadcast_to(&index_shape))
            .collect::<Result<Vec<_>>>()?;
        Ok(IndexPlan {
            base,
            axis,
            index_shape,
            index_layouts,
        })
    }

    /// The shape of the indexed result.
    pub fn out_shape(&self) -> Vec<usize> {
        let s = self.base.shape();
        let k = self.index_layouts.len();
        let mut out = s[..self.axis].to_vec();
        out.extend_from_slice(&self.index_shape);
        out.extend_from_slice(&s[self.axis + k..]);
        out
    }
}

/// The distribution of [`RandomSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high)`.
    Uniform {
        /// Inclusive lower bound.
        low: f64,
        /// Exclusive upper bound.
        high: f64,
    },
    /// Normal with this mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Integers `low + r` with `r` uniform on `0..span`.
    Integers {
        /// Smallest value.
        low: i64,
        /// Number of distinct values (at least 1).
        span: u64,
    },
}

/// A fill with counter-based random numbers (Philox4x32-10; see [`crate::random`]): element
/// `i` of a dense output is a function of `(seed, counter, i)` alone, so every backend gives the
/// same numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomSpec {
    /// The Philox key.
    pub seed: u64,
    /// The first Philox counter block this fill uses.
    pub counter: u64,
    /// What to draw.
    pub dist: Distribution,
}

/// Declares an op enum with its variants' public names, a constant list of every variant and
/// a dense index (for per-op kernel slots).
macro_rules! op_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $v,)+
        }

        impl $name {
            /// Every variant, in declaration order ([`Self::index`] is the position here).
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The op's public name (the Python Array API standard's, or `pf.nn`'s).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$v => $s,)+
                }
            }

            /// The position of the op in [`Self::ALL`].
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

op_enum! {
    /// An elementwise function of one operand. The operand has the compute dtype (the result's,
    /// or the input's for the tests that return `bool`); `float16` and `bfloat16` compute in
    /// `float32` and round once.
    UnaryOp {
        /// `|x|` (wrapping for the most negative integer).
        Abs = "abs",
        /// `-x` (wrapping for integers).
        Negative = "negative",
        /// `~x` (logical not for `bool`).
        BitwiseInvert = "bitwise_invert",
        /// `!x` on `bool`.
        LogicalNot = "logical_not",
        /// `e^x`.
        Exp = "exp",
        /// `e^x - 1`.
        Expm1 = "expm1",
        /// Natural logarithm.
        Log = "log",
        /// `ln(1 + x)`.
        Log1p = "log1p",
        /// Base-2 logarithm.
        Log2 = "log2",
        /// Base-10 logarithm.
        Log10 = "log10",
        /// Square root.
        Sqrt = "sqrt",
        /// `x * x`.
        Square = "square",
        /// `1 / x`.
        Reciprocal = "reciprocal",
        /// Sine.
        Sin = "sin",
        /// Cosine.
        Cos = "cos",
        /// Tangent.
        Tan = "tan",
        /// Inverse sine.
        Asin = "asin",
        /// Inverse cosine.
        Acos = "acos",
        /// Inverse tangent.
        Atan = "atan",
        /// Hyperbolic sine.
        Sinh = "sinh",
        /// Hyperbolic cosine.
        Cosh = "cosh",
        /// Hyperbolic tangent.
        Tanh = "tanh",
        /// Inverse hyperbolic sine.
        Asinh = "asinh",
        /// Inverse hyperbolic cosine.
        Acosh = "acosh",
        /// Inverse hyperbolic tangent.
        Atanh = "atanh",
        /// Smallest integer not below `x`.
        Ceil = "ceil",
        /// Largest integer not above `x`.
        Floor = "floor",
        /// Nearest integer, halves to even.
        Round = "round",
        /// Integer part (toward zero).
        Trunc = "trunc",
        /// `-1`, `0` or `1` (NaN for NaN, signed zero kept).
        Sign = "sign",
        /// Whether the sign bit is set (`bool` result).
        Signbit = "signbit",
        /// Whether `x` is NaN (`bool` result).
        IsNan = "isnan",
        /// Whether `x` is infinite (`bool` result).
        IsInf = "isinf",
        /// Whether `x` is finite (`bool` result).
        IsFinite = "isfinite",
        /// `max(x, 0)` (NaN stays NaN).
        Relu = "relu",
        /// `x * Φ(x)`, the exact GELU (`0.5 x erfc(-x / √2)`).
        Gelu = "gelu",
        /// The tanh approximation of GELU, `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
        GeluTanh = "gelu_tanh",
        /// `x * sigmoid(x)`.
        Silu = "silu",
        /// `1 / (1 + e^-x)`.
        Sigmoid = "sigmoid",
    }
}

op_enum! {
    /// An elementwise function of two operands of the compute dtype. Integer arithmetic wraps;
    /// integer division and remainder by zero give 0 (as NumPy); shifts by the width or more
    /// give 0 (or -1 shifting a negative value right), negative shift counts give 0.
    BinaryOp {
        /// `a + b` (logical or for `bool`).
        Add = "add",
        /// `a - b`.
        Subtract = "subtract",
        /// `a * b` (logical and for `bool`).
        Multiply = "multiply",
        /// `a / b` (floats only).
        Divide = "divide",
        /// `floor(a / b)`, as Python's `//`.
        FloorDivide = "floor_divide",
        /// `a - floor(a / b) * b`, the sign of `b`, as Python's `%`.
        Remainder = "remainder",
        /// `a ** b` (integers: by squaring, wrapping; a negative exponent gives 0 unless `|a|`
        /// is 1).
        Pow = "pow",
        /// The larger, NaN if either is NaN.
        Maximum = "maximum",
        /// The smaller, NaN if either is NaN.
        Minimum = "minimum",
        /// The angle of the point `(b, a)`.
        Atan2 = "atan2",
        /// `sqrt(a^2 + b^2)` without undue overflow.
        Hypot = "hypot",
        /// `|a|` with the sign of `b`.
        Copysign = "copysign",
        /// `ln(e^a + e^b)`.
        Logaddexp = "logaddexp",
        /// The next representable value after `a` toward `b`.
        Nextafter = "nextafter",
        /// Bitwise and.
        BitwiseAnd = "bitwise_and",
        /// Bitwise or.
        BitwiseOr = "bitwise_or",
        /// Bitwise exclusive or.
        BitwiseXor = "bitwise_xor",
        /// `a << b`.
        BitwiseLeftShift = "bitwise_left_shift",
        /// `a >> b` (arithmetic for signed integers).
        BitwiseRightShift = "bitwise_right_shift",
        /// The gradient of `relu` at `b` times `a` (0 where `b <= 0`, torch's convention).
        ReluBackward = "relu_backward",
        /// The gradient of the exact `gelu` at `b` times `a`.
        GeluBackward = "gelu_backward",
        /// The gradient of `gelu_tanh` at `b` times `a`.
        GeluTanhBackward = "gelu_tanh_backward",
        /// The gradient of `silu` at `b` times `a`.
        SiluBackward = "silu_backward",
        /// The gradient of `sigmoid` times `a`, from the sigmoid's output `b`: `a b (1 - b)`.
        SigmoidBackward = "sigmoid_backward",
        /// Logical and (`bool` operands).
        LogicalAnd = "logical_and",
        /// Logical or (`bool` operands).
        LogicalOr = "logical_or",
        /// Logical exclusive or (`bool` operands).
        LogicalXor = "logical_xor",
        /// `a == b` (`bool` result).
        Equal = "equal",
        /// `a != b` (`bool` result).
        NotEqual = "not_equal",
        /// `a < b` (`bool` result).
        Less = "less",
        /// `a <= b` (`bool` result).
        LessEqual = "less_equal",
        /// `a > b` (`bool` result).
        Greater = "greater",
        /// `a >= b` (`bool` result).
        GreaterEqual = "greater_equal",
    }
}

impl UnaryOp {
    /// Whether the result is `bool` whatever the operand's dtype.
    pub fn returns_bool(self) -> bool {
        matches!(
            self,
            UnaryOp::Signbit | UnaryOp::IsNan | UnaryOp::IsInf | UnaryOp::IsFinite
        )
    }
}

impl BinaryOp {
    /// Whether the result is `bool` whatever the operands' dtype (comparisons and logical
    /// ops).
    pub fn returns_bool(self) -> bool {
        self.index() >= BinaryOp::LogicalAnd.index()
    }
}

op_enum! {
    /// A reduction over some axes.
    ReduceOp {
        /// The sum (floats: pairwise on the CPU, a tree on CUDA; `float16`/`bfloat16` accumulate
        /// in `float32`; integers wrap in 64 bits).
        Sum = "sum",
        /// The product.
        Prod = "prod",
        /// The largest element, NaN if any is NaN.
        Max = "max",
        /// The smallest element, NaN if any is NaN.
        Min = "min",
        /// Whether every element is true (`bool` operand).
        All = "all",
        /// Whether any element is true (`bool` operand).
        Any = "any",
        /// The index of the first largest element (the first NaN if any), `int64`.
        Argmax = "argmax",
        /// The index of the first smallest element (the first NaN if any), `int64`.
        Argmin = "argmin",
    }
}

op_enum! {
    /// A cumulative reduction along one axis.
    ScanOp {
        /// Running sums.
        Sum = "cumulative_sum",
        /// Running products.
        Prod = "cumulative_prod",
    }
}

/// A reduction of a strided view: `src`'s first `kept` dimensions are the result's (a dense
/// C-order output of that shape), the rest are reduced (flattened in C order: `argmax` and
/// `argmin` return the position in that order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReducePlan {
    /// The operand, its dimensions permuted so that the kept ones come first.
    pub src: Layout,
    /// The number of leading dimensions kept.
    pub kept: usize,
}

impl ReducePlan {
    /// The shape of the result.
    pub fn out_shape(&self) -> &[usize] {
        &self.src.shape()[..self.kept]
    }

    /// The number of elements reduced into each result element.
    pub fn reduced_len(&self) -> usize {
        self.src.shape()[self.kept..].iter().product()
    }
}

op_enum! {
    /// A row-wise op of `pf.nn`: each row (the last axis of a C-contiguous `(rows, n)` view) is
    /// read and written by one worker, its statistics (maximum, sums, mean, variance) in
    /// `float32` for `float16`/`bfloat16` rows, in the row's dtype otherwise.
    RowOp {
        /// `y = e^(x - max) / Σ e^(x - max)`.
        Softmax = "softmax",
        /// `y = x - max - ln Σ e^(x - max)`.
        LogSoftmax = "log_softmax",
        /// `dx = y (dy - Σ dy y)` from the softmax output `y`.
        SoftmaxBackward = "softmax_backward",
        /// `dx = dy - e^y Σ dy` from the log-softmax output `y`.
        LogSoftmaxBackward = "log_softmax_backward",
        /// `y = (x - mean) / sqrt(var + eps) * weight + bias` (biased variance).
        LayerNorm = "layer_norm",
        /// `y = x / sqrt(mean(x²) + eps) * weight`.
        RmsNorm = "rms_norm",
        /// `dx` of `LayerNorm` from `dy`, `x` and `weight`; writes the row's `[mean, rstd]`.
        LayerNormBackward = "layer_norm_backward",
        /// `dx` of `RmsNorm` from `dy`, `x` and `weight`; writes the row's `[0, rstd]`.
        RmsNormBackward = "rms_norm_backward",
    }
}

impl RowOp {
    /// Whether the op reads `dy` (the backward ops).
    pub fn is_backward(self) -> bool {
        matches!(
            self,
            RowOp::SoftmaxBackward
                | RowOp::LogSoftmaxBackward
                | RowOp::LayerNormBackward
                | RowOp::RmsNormBackward
        )
    }

    /// Whether the op writes per-row statistics (`[mean, rstd]`, see [`RowPlan`]).
    pub fn writes_stats(self) -> bool {
        matches!(self, RowOp::LayerNormBackward | RowOp::RmsNormBackward)
    }
}

/// A row-wise op over `rows` rows of `n` elements (see [`RowOp`]). Every array it names is
/// C-contiguous: the rows `(rows, n)`, `weight` and `bias` `(n,)`, the statistics `(rows, 2)` in
/// the statistics dtype (`float64` for `float64` rows, else `float32`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowPlan {
    /// The op.
    pub op: RowOp,
    /// Number of rows (may be 0).
    pub rows: usize,
    /// Elements per row (at least 1).
    pub n: usize,
    /// The normalizations' `eps` (added to the variance or mean square).
    pub eps: f64,
}

/// How a sparse-times-dense product is oriented (see `BackendStorage::csr_dense`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseDensePlan {
    /// The sparse operand enters transposed.
    pub transpose: bool,
    /// The dense operand comes first: `x op(a)` rather than `op(a) x`.
    pub dense_first: bool,
}
