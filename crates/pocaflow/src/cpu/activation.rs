//! The activations of `pf.nn` and their derivatives, on one compute value (`f32` or `f64`; half
//! types compute in `f32`). The CUDA kernels (`math.cuh`) mirror these formulas.

use super::math::Float;

/// `√(1/2)`.
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// `1/√(2π)`, the standard normal density at 0.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `√(2/π)`, the tanh approximation's scale.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The tanh approximation's cubic coefficient.
const GELU_CUBIC: f64 = 0.044_715;

/// `max(x, 0)`; NaN stays NaN.
#[inline(always)]
pub(crate) fn relu<F: Float>(x: F) -> F {
    if x > F::ZERO || x.is_nan() {
        x
    } else {
        F::ZERO
    }
}

/// `dy` where `x > 0`, else 0 (the gradient at 0 is 0, torch's convention).
#[inline(always)]
pub(crate) fn relu_backward<F: Float>(dy: F, x: F) -> F {
    if x > F::ZERO {
        dy
    } else {
        F::ZERO
    }
}

/// The standard normal distribution function `Φ(x) = erfc(-x / √2) / 2` (accurate in both
/// tails, where `(1 + erf)` would cancel).
#[inline(always)]
fn normal_cdf<F: Float>(x: F) -> F {
    F::of(0.5) * (-x * F::of(FRAC_1_SQRT_2)).erfc()
}

/// `x * s`, or `-0` where the factor `s` has underflowed to 0 (so that `x = -∞` gives the
/// limit, not `-∞ · 0 = NaN`).
#[inline(always)]
fn times<F: Float>(x: F, s: F) -> F {
    if s == F::ZERO {
        -F::ZERO
    } else {
        x * s
    }
}

/// `x * s` for a term that vanishes where `s` has underflowed to 0 (`0` then, even for an
/// infinite `x`).
#[inline(always)]
fn term<F: Float>(x: F, s: F) -> F {
    if s == F::ZERO {
        F::ZERO
    } else {
        x * s
    }
}

/// The exact GELU, `x Φ(x)` (`-0` at `-∞`).
#[inline(always)]
pub(crate) fn gelu<F: Float>(x: F) -> F {
    times(x, normal_cdf(x))
}

/// `dy * (Φ(x) + x φ(x))`.
#[inline(always)]
pub(crate) fn gelu_backward<F: Float>(dy: F, x: F) -> F {
    let pdf = F::of(FRAC_1_SQRT_2PI) * (F::of(-0.5) * x * x).exp();
    dy * (normal_cdf(x) + term(x, pdf))
}

/// `tanh(√(2/π) (x + 0.044715 x³))`.
#[inline(always)]
fn gelu_tanh_inner<F: Float>(x: F) -> F {
    (F::of(SQRT_2_OVER_PI) * (x + F::of(GELU_CUBIC) * x * x * x)).tanh()
}

/// The tanh approximation of GELU, `x (1 + t) / 2` (`-0` at `-∞`).
#[inline(always)]
pub(crate) fn gelu_tanh<F: Float>(x: F) -> F {
    times(F::of(0.5) * x, F::ONE + gelu_tanh_inner(x))
}

/// `dy * ((1 + t) / 2 + x (1 - t²) √(2/π) (1 + 3 · 0.044715 x²) / 2)`.
#[inline(always)]
pub(crate) fn gelu_tanh_backward<F: Float>(dy: F, x: F) -> F {
    let t = gelu_tanh_inner(x);
    let du = F::of(SQRT_2_OVER_PI) * (F::ONE + F::of(3.0 * GELU_CUBIC) * x * x);
    dy * (F::of(0.5) * (F::ONE + t) + term(F::of(0.5) * x * du, F::ONE - t * t))
}

/// `1 / (1 + e^-x)` (0 for large negative `x`, never NaN for finite `x`).
#[inline(always)]
pub(crate) fn sigmoid<F: Float>(x: F) -> F {
    F::ONE / (F::ONE + (-x).exp())
}

/// `dy * y (1 - y)` from the sigmoid's output `y`.
#[inline(always)]
pub(crate) fn sigmoid_backward<F: Float>(dy: F, y: F) -> F {
    dy * y * (F::ONE - y)
}

/// `x * sigmoid(x)` (`-0` at `-∞`).
#[inline(always)]
pub(crate) fn silu<F: Float>(x: F) -> F {
    times(x, sigmoid(x))
}

/// `dy * s (1 + x (1 - s))` with `s = sigmoid(x)`.
#[inline(always)]
pub(crate) fn silu_backward<F: Float>(dy: F, x: F) -> F {
    let s = sigmoid(x);
    dy * term(F::ONE + term(x, F::ONE - s), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_their_definitions() {
        let xs = [-30.0f64, -3.0, -0.5, 0.0, 0.7, 2.0, 25.0];
        for &x in &xs {
            let phi = 0.5 * (1.0 + libm::erf(x / 2f64.sqrt()));
            assert!(
                (gelu(x) - x * phi).abs() <= 1e-15 * (1.0 + x.abs()),
                "gelu({x})"
            );
            let s = 1.0 / (1.0 + (-x).exp());
            assert!(
                (silu(x) - x * s).abs() <= 1e-15 * (1.0 + x.abs()),
                "silu({x})"
            );
            // Central differences against the analytic derivatives.
            let h = 1e-6;
            let fd = |f: fn(f64) -> f64| (f(x + h) - f(x - h)) / (2.0 * h);
            assert!(
                (gelu_backward(1.0, x) - fd(gelu)).abs() < 1e-8,
                "gelu'({x})"
            );
            assert!(
                (gelu_tanh_backward(1.0, x) - fd(gelu_tanh)).abs() < 1e-8,
                "gelu_tanh'({x})"
            );
            assert!(
                (silu_backward(1.0, x) - fd(silu)).abs() < 1e-8,
                "silu'({x})"
            );
            assert!(
                (sigmoid_backward(1.0, sigmoid(x)) - fd(sigmoid)).abs() < 1e-8,
                "sigmoid'({x})"
            );
        }
        assert_eq!(gelu(-40.0f32), -0.0);
        assert!(gelu(f32::NAN).is_nan() && relu(f64::NAN).is_nan());
        assert_eq!(relu_backward(5.0f32, 0.0), 0.0);
        assert_eq!(sigmoid(-1000.0f32), 0.0);
        // The limits at the infinities, not inf * 0.
        for f in [gelu::<f32>, gelu_tanh, silu] {
            assert!(f(f32::NEG_INFINITY) == 0.0 && f(f32::NEG_INFINITY).is_sign_negative());
            assert_eq!(f(f32::INFINITY), f32::INFINITY);
        }
        for f in [gelu_backward::<f64>, gelu_tanh_backward, silu_backward] {
            assert_eq!(f(1.0, f64::NEG_INFINITY), 0.0);
            assert_eq!(f(1.0, f64::INFINITY), 1.0);
        }
    }
}
