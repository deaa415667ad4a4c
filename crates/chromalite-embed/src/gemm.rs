//! A safe, bounds-checked front to `matrixmultiply::sgemm`.

/// A strided, read-only view of a `rows × cols` f32 matrix inside `data`: element `(i, j)` is
/// `data[i * rs + j * cs]`. Strides let one buffer be seen transposed (a weight `[out, in]` as
/// `[in, out]`) or as one head's column block of the packed Q/K/V rows, without copying.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Whether every index a non-empty `rows × cols` view with these strides touches is below `len`,
/// and both strides fit in `isize` (what `sgemm` takes). The arithmetic is checked: a wrapped index
/// would pass the comparison and break the proof of the `unsafe` call that relies on it.
fn fits(rows: usize, cols: usize, rs: usize, cs: usize, len: usize) -> bool {
    let last = (rows - 1).checked_mul(rs).and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)));
    last.is_some_and(|last| last < len) && isize::try_from(rs.max(cs)).is_ok()
}

/// `c = a · b` for `a: m × k`, `b: k × n`, writing `c[i * c_rs + j]` (c's rows contiguous).
///
/// # Panics
/// When the shapes disagree or a view reaches past its slice: a programming error in the caller,
/// never something input text can cause.
#[allow(clippy::many_single_char_names)] // m, k, n, a, b, c: BLAS's names for a GEMM
pub(crate) fn matmul(a: View<'_>, b: View<'_>, c: &mut [f32], c_rs: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            c[i * c_rs..i * c_rs + n].fill(0.0);
        }
        return;
    }
    // m, k and n are all non-zero from here on.
    for v in [&a, &b] {
        assert!(fits(v.rows, v.cols, v.rs, v.cs, v.data.len()), "matrix view reaches past its buffer");
    }
    assert!(fits(m, n, c_rs, 1, c.len()), "output view reaches past its buffer");
    assert!(c_rs >= n, "output rows overlap");
    // Every stride was checked to fit in isize by `fits`.
    let s = |x: usize| x as isize;
    // SAFETY: `sgemm` reads `a` at `i*rs + j*cs` for i < m, j < k and `b` likewise for k × n; the
    // asserts above prove the largest such index is inside each slice. It writes `c` at
    // `i*c_rs + j` for i < m, j < n, also proven in bounds, and those positions are distinct
    // because `c_rs >= n`. `c` is a `&mut` borrow, so it cannot alias `a` or `b`. With beta = 0
    // the old contents of `c` are never read.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            s(a.rs),
            s(a.cs),
            b.data.as_ptr(),
            s(b.rs),
            s(b.cs),
            0.0,
            c.as_mut_ptr(),
            s(c_rs),
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies_strided_views() {
        // a = [[1,2],[3,4]], b = aᵀ seen through strides of a.
        let a = [1.0, 2.0, 3.0, 4.0];
        let av = View { data: &a, rows: 2, cols: 2, rs: 2, cs: 1 };
        let bt = View { data: &a, rows: 2, cols: 2, rs: 1, cs: 2 };
        let mut c = [0.0; 4];
        matmul(av, bt, &mut c, 2);
        assert!(c.iter().zip([5.0, 11.0, 11.0, 25.0]).all(|(x, y)| (x - y).abs() < 1e-6), "{c:?}");
    }

    #[test]
    #[should_panic(expected = "past its buffer")]
    fn refuses_out_of_bounds_views() {
        let a = [1.0; 3];
        let v = View { data: &a, rows: 2, cols: 2, rs: 2, cs: 1 };
        let mut c = [0.0; 4];
        matmul(v, v, &mut c, 2);
    }
}
