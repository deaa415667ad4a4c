//! Distance kernels.
//!
//! The kernels are plain safe Rust written so that LLVM vectorises them: the
//! main loop walks 32 lanes at a time into 32 independent accumulators (eight
//! SSE registers or four AVX registers), then the lanes are reduced pairwise.
//! On `x86_64` a second copy of each kernel is compiled with AVX2 + FMA enabled
//! and chosen at run time when the CPU has those features; everywhere else the
//! portable copy runs. Both copies are checked against a scalar reference in
//! the tests.

/// The three spaces Chroma offers, with hnswlib's distance definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    /// Squared Euclidean distance (no square root), Chroma's `l2`.
    L2,
    /// `1 - dot(a, b)`, Chroma's `ip`.
    InnerProduct,
    /// `1 - dot(a, b)` of unit vectors, Chroma's `cosine`. Vectors are
    /// normalised at insert and at query time.
    Cosine,
}

impl Space {
    /// Chroma's name for the space (`l2`, `ip`, `cosine`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Space::L2 => "l2",
            Space::InnerProduct => "ip",
            Space::Cosine => "cosine",
        }
    }

    /// Parses Chroma's space name (`l2`, `ip`, `cosine`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Space> {
        match name {
            "l2" => Some(Space::L2),
            "ip" => Some(Space::InnerProduct),
            "cosine" => Some(Space::Cosine),
            _ => None,
        }
    }

    /// Distance between two vectors of equal length in this space, using the
    /// fastest kernel available on this CPU. For [`Space::Cosine`] the inputs
    /// are assumed to be normalised already (as stored vectors are).
    #[must_use]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        (kernel_for(self))(a, b)
    }
}

/// A distance kernel: both slices have the index dimension.
pub(crate) type DistFn = fn(&[f32], &[f32]) -> f32;

const LANES: usize = 32;

// `inline(always)` on the kernel bodies is deliberate: they must be inlined
// into the `#[target_feature]` wrappers to be compiled with AVX2/FMA.
#[allow(clippy::inline_always)]
#[inline(always)]
fn reduce(acc: &[f32; LANES]) -> f32 {
    // Pairwise reduction: 32 -> 16 -> 8 -> 4 -> 2 -> 1.
    let mut v = *acc;
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            v[i] += v[i + width];
        }
        width /= 2;
    }
    v[0]
}

#[allow(clippy::inline_always)]
#[inline(always)]
fn dot_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] = if FMA { x[i].mul_add(y[i], acc[i]) } else { acc[i] + x[i] * y[i] };
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail += x * y;
    }
    reduce(&acc) + tail
}

#[allow(clippy::inline_always)]
#[inline(always)]
fn l2_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] = if FMA { d.mul_add(d, acc[i]) } else { acc[i] + d * d };
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        let d = x - y;
        tail += d * d;
    }
    reduce(&acc) + tail
}

/// Portable dot product (vectorised for the baseline target).
#[must_use]
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_body::<false>(a, b)
}

/// Portable squared Euclidean distance (vectorised for the baseline target).
#[must_use]
pub fn l2_portable(a: &[f32], b: &[f32]) -> f32 {
    l2_body::<false>(a, b)
}

fn ip_dist_portable(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot_body::<false>(a, b)
}

#[cfg(target_arch = "x86_64")]
mod avx {
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_body::<true>(a, b)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn l2(a: &[f32], b: &[f32]) -> f32 {
        super::l2_body::<true>(a, b)
    }

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    pub(super) fn dot_checked(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: `dot_checked` is only ever installed as a kernel (see
        // `kernel_for`) after `available()` returned true, i.e. the running
        // CPU supports AVX2 and FMA, which is the only precondition of calling
        // a `#[target_feature(enable = "avx2,fma")]` function. The function
        // body itself is safe Rust.
        unsafe { dot(a, b) }
    }

    pub(super) fn ip_dist_checked(a: &[f32], b: &[f32]) -> f32 {
        1.0 - dot_checked(a, b)
    }

    pub(super) fn l2_checked(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: as in `dot_checked`: only installed after `available()`.
        unsafe { l2(a, b) }
    }
}

/// Whether the AVX2/FMA kernels are in use on this CPU.
#[must_use]
pub fn simd_kernels_active() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kernel used for `space` on this CPU.
pub(crate) fn kernel_for(space: Space) -> DistFn {
    #[cfg(target_arch = "x86_64")]
    {
        if avx::available() {
            return match space {
                Space::L2 => avx::l2_checked,
                Space::InnerProduct | Space::Cosine => avx::ip_dist_checked,
            };
        }
    }
    match space {
        Space::L2 => l2_portable,
        Space::InnerProduct | Space::Cosine => ip_dist_portable,
    }
}

/// Normalises like hnswlib's `normalize_vector`: multiplies by
/// `1 / (|v| + 1e-30)` and returns `(normalised, |v|)`.
pub(crate) fn normalize(v: &[f32]) -> (Vec<f32>, f32) {
    let mut norm = 0.0f32;
    for x in v {
        norm += x * x;
    }
    let length = norm.sqrt();
    let inv = 1.0 / (length + 1e-30);
    (v.iter().map(|x| x * inv).collect(), length)
}

/// Scalar references, used by the tests and the brute-force checks.
pub mod reference {
    /// Sequential scalar dot product.
    #[must_use]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut s = 0.0f64;
        for (x, y) in a.iter().zip(b) {
            s += f64::from(*x) * f64::from(*y);
        }
        s as f32
    }

    /// Sequential scalar squared Euclidean distance.
    #[must_use]
    pub fn l2(a: &[f32], b: &[f32]) -> f32 {
        let mut s = 0.0f64;
        for (x, y) in a.iter().zip(b) {
            let d = f64::from(*x) - f64::from(*y);
            s += d * d;
        }
        s as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand_vec(seed: &mut u64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn kernels_match_scalar_reference() {
        let mut seed = 7;
        for n in [0usize, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 384, 385, 1536] {
            let a = rand_vec(&mut seed, n);
            let b = rand_vec(&mut seed, n);
            let tol = 1e-5 * (n as f32 + 1.0);
            let d_ref = reference::dot(&a, &b);
            let l_ref = reference::l2(&a, &b);
            assert!((dot_portable(&a, &b) - d_ref).abs() <= tol, "dot n={n}");
            assert!((l2_portable(&a, &b) - l_ref).abs() <= tol, "l2 n={n}");
            assert!(((kernel_for(Space::L2))(&a, &b) - l_ref).abs() <= tol, "l2 fast n={n}");
            assert!(((kernel_for(Space::InnerProduct))(&a, &b) - (1.0 - d_ref)).abs() <= tol);
            assert!((Space::Cosine.distance(&a, &b) - (1.0 - d_ref)).abs() <= tol);
        }
    }

    #[test]
    fn normalize_matches_hnswlib() {
        let (v, len) = normalize(&[3.0, 4.0]);
        assert!((len - 5.0).abs() < 1e-6);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let (z, zl) = normalize(&[0.0, 0.0]);
        assert!(zl.abs() < f32::MIN_POSITIVE);
        assert!(z.iter().all(|x| x.abs() < f32::MIN_POSITIVE));
    }

    #[test]
    fn space_names_round_trip() {
        for s in [Space::L2, Space::InnerProduct, Space::Cosine] {
            assert_eq!(Space::from_name(s.name()), Some(s));
        }
        assert_eq!(Space::from_name("euclid"), None);
    }
}
