//! Strided walks over the elements of one, two or three views of one shape, in C order.
//! Dimensions that every view steps through as one are merged first, and the innermost
//! dimension runs as a plain loop.

use crate::layout::Layout;

/// The dimensions of views of one shape, extent-1 dimensions dropped and neighbours merged
/// where every view steps through them as one: `(extent, stride per view)`, outermost first.
pub(crate) fn merged<const N: usize>(
    shape: &[usize],
    strides: [&[isize]; N],
) -> Vec<(usize, [isize; N])> {
    let mut dims: Vec<(usize, [isize; N])> = Vec::new();
    for (d, &n) in shape.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let s: [isize; N] = std::array::from_fn(|v| strides[v][d]);
        match dims.last_mut() {
            Some((m, last)) if (0..N).all(|v| last[v] == s[v] * n as isize) => {
                *m *= n;
                *last = s;
            }
            _ => dims.push((n, s)),
        }
    }
    dims
}

/// Calls `f(offsets, n, strides)` for each run of `N` views of one shape, in C order: a run is
/// `n` elements along the innermost merged dimension, starting at `offsets` and stepping by
/// `strides` (one per view).
#[allow(clippy::needless_range_loop)]
pub(crate) fn for_each_run<const N: usize>(
    shape: &[usize],
    strides: [&[isize]; N],
    offsets: [usize; N],
    mut f: impl FnMut([usize; N], usize, [isize; N]),
) {
    if shape.contains(&0) {
        return;
    }
    let dims = merged(shape, strides);
    let Some(&(inner_n, inner_s)) = dims.last() else {
        f(offsets, 1, [0; N]);
        return;
    };
    let outer = &dims[..dims.len() - 1];
    let mut index = vec![0usize; outer.len()];
    let mut pos: [isize; N] = std::array::from_fn(|v| offsets[v] as isize);
    loop {
        f(std::array::from_fn(|v| pos[v] as usize), inner_n, inner_s);
        // Advance the outer index like an odometer.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            for v in 0..N {
                pos[v] += outer[d].1[v];
            }
            if index[d] < outer[d].0 {
                break;
            }
            for v in 0..N {
                pos[v] -= outer[d].1[v] * outer[d].0 as isize;
            }
            index[d] = 0;
        }
    }
}

/// Calls `f` with the storage offsets of each element of `N` views of one shape, in C order.
#[allow(clippy::needless_range_loop)]
fn walk<const N: usize>(
    shape: &[usize],
    strides: [&[isize]; N],
    offsets: [usize; N],
    mut f: impl FnMut([usize; N]),
) {
    for_each_run(shape, strides, offsets, |start, n, step| {
        let mut p: [isize; N] = std::array::from_fn(|v| start[v] as isize);
        for _ in 0..n {
            f(std::array::from_fn(|v| p[v] as usize));
            for v in 0..N {
                p[v] += step[v];
            }
        }
    });
}

/// Calls `f(a_offset, b_offset)` for each element of two views of one shape.
pub(crate) fn for_each2(a: &Layout, b: &Layout, mut f: impl FnMut(usize, usize)) {
    debug_assert_eq!(a.shape(), b.shape());
    walk(
        a.shape(),
        [a.strides(), b.strides()],
        [a.offset(), b.offset()],
        |[x, y]| f(x, y),
    );
}

/// Calls `f(a_offset, b_offset, c_offset)` for each element of three views of one shape.
pub(crate) fn for_each3(
    a: &Layout,
    b: &Layout,
    c: &Layout,
    mut f: impl FnMut(usize, usize, usize),
) {
    walk(
        a.shape(),
        [a.strides(), b.strides(), c.strides()],
        [a.offset(), b.offset(), c.offset()],
        |[x, y, z]| f(x, y, z),
    );
}

/// The offsets relative to the first element of a view of `shape` and `strides`, in C order
/// (one offset, 0, for a 0-d view).
pub(crate) fn run_offsets(shape: &[usize], strides: &[isize]) -> Vec<isize> {
    let mut out = Vec::with_capacity(shape.iter().product());
    // Offsets start at a large base so that negative strides stay representable in usize.
    const BASE: usize = 1 << (usize::BITS - 2);
    walk(shape, [strides], [BASE], |[o]| {
        out.push(o as isize - BASE as isize)
    });
    out
}

/// Calls `f(offset, coordinates)` for each element of `layout`, in C order.
pub(crate) fn for_each_coord(layout: &Layout, mut f: impl FnMut(usize, &[usize])) {
    let shape = layout.shape();
    let mut cur = vec![0usize; shape.len()];
    for (n, offset) in layout.indices().enumerate() {
        if n > 0 {
            for d in (0..shape.len()).rev() {
                cur[d] += 1;
                if cur[d] < shape[d] {
                    break;
                }
                cur[d] = 0;
            }
        }
        f(offset, &cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_match_the_plain_index_order() {
        let a = Layout::new(&[2, 3, 4], &[12, 4, 1], 0).unwrap();
        let b = Layout::new(&[2, 3, 4], &[1, -8, 2], 16).unwrap();
        let mut got = Vec::new();
        for_each2(&a, &b, |x, y| got.push((x, y)));
        let want: Vec<_> = a.indices().zip(b.indices()).collect();
        assert_eq!(got, want);
        assert_eq!(run_offsets(&[2, 2], &[-3, 1]), vec![0, 1, -3, -2]);
        assert_eq!(run_offsets(&[], &[]), vec![0]);
        let mut seen = Vec::new();
        for_each_coord(&Layout::new(&[2, 2], &[1, 2], 0).unwrap(), |o, c| {
            seen.push((o, c.to_vec()))
        });
        assert_eq!(
            seen,
            vec![
                (0, vec![0, 0]),
                (2, vec![0, 1]),
                (1, vec![1, 0]),
                (3, vec![1, 1])
            ]
        );
    }
}
