//! Distance kernels.
//!
//! The kernels are plain safe Rust written so that LLVM vectorises them: the
//! main loop walks 32 lanes at a time into 32 independent accumulators (eight
//! SSE registers, four AVX registers or two AVX-512 registers), then the lanes
//! are summed. On `x86_64` further copies of each kernel are compiled with
//! AVX2 + FMA and with AVX-512F enabled, and the best one the CPU supports is
//! chosen at run time; everywhere else the portable copy runs. Every copy is
//! checked against a scalar reference in the tests.

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
// into the `#[target_feature]` wrappers to be compiled with AVX2/AVX-512.
// The shape (one `[f32; 32]` accumulator, lane-wise update, a plain `sum()`
// at the end) is what LLVM's SLP vectoriser turns into 4 ymm / 2 zmm FMA
// chains; a hand-written pairwise reduction made it fall back to 2-wide code.
#[allow(clippy::inline_always)]
#[inline(always)]
fn dot_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ca, ta) = a[..n].as_chunks::<LANES>();
    let (cb, tb) = b[..n].as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..LANES {
            acc[i] = if FMA { x[i].mul_add(y[i], acc[i]) } else { acc[i] + x[i] * y[i] };
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

#[allow(clippy::inline_always)]
#[inline(always)]
fn l2_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (ca, ta) = a[..n].as_chunks::<LANES>();
    let (cb, tb) = b[..n].as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in ca.iter().zip(cb) {
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
    acc.iter().sum::<f32>() + tail
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
mod simd {
    #[target_feature(enable = "avx2,fma")]
    fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        super::dot_body::<true>(a, b)
    }

    #[target_feature(enable = "avx2,fma")]
    fn l2_avx2(a: &[f32], b: &[f32]) -> f32 {
        super::l2_body::<true>(a, b)
    }

    #[target_feature(enable = "avx512f")]
    fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        super::dot_body::<true>(a, b)
    }

    #[target_feature(enable = "avx512f")]
    fn l2_avx512(a: &[f32], b: &[f32]) -> f32 {
        super::l2_body::<true>(a, b)
    }

    pub(super) fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    pub(super) fn has_avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    // SAFETY (all `unsafe` blocks below): calling a `#[target_feature]`
    // function is sound iff the running CPU has those features. The four
    // wrappers below are private to this module and leave it only through
    // `avx2()` / `avx512()`, which hand them out after `has_avx2()` /
    // `has_avx512()` (run-time CPUID detection) returned true for exactly the
    // features the wrapped function enables. The wrapped bodies are safe Rust
    // (slices, no raw pointers).

    fn ip_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: see above (handed out only when `has_avx2()`).
        1.0 - unsafe { dot_avx2(a, b) }
    }

    fn l2sq_avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: see above (handed out only when `has_avx2()`).
        unsafe { l2_avx2(a, b) }
    }

    fn ip_avx512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: see above (handed out only when `has_avx512()`).
        1.0 - unsafe { dot_avx512(a, b) }
    }

    fn l2sq_avx512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: see above (handed out only when `has_avx512()`).
        unsafe { l2_avx512(a, b) }
    }

    /// The AVX2+FMA kernels `(l2, ip)`, when this CPU has those features.
    pub(super) fn avx2() -> Option<(super::DistFn, super::DistFn)> {
        has_avx2().then_some((l2sq_avx2, ip_avx2))
    }

    /// The AVX-512 kernels `(l2, ip)`, when this CPU has that feature.
    pub(super) fn avx512() -> Option<(super::DistFn, super::DistFn)> {
        has_avx512().then_some((l2sq_avx512, ip_avx512))
    }
}

/// Which kernel family runs on this CPU: `"avx512"`, `"avx2+fma"` or `"portable"`.
#[must_use]
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if simd::has_avx512() {
            return "avx512";
        }
        if simd::has_avx2() {
            return "avx2+fma";
        }
    }
    "portable"
}

/// Whether vector-extension kernels (AVX2/FMA or AVX-512) are in use.
#[must_use]
pub fn simd_kernels_active() -> bool {
    simd_level() != "portable"
}

/// The kernel used for `space` on this CPU.
pub(crate) fn kernel_for(space: Space) -> DistFn {
    #[cfg(target_arch = "x86_64")]
    if let Some((l2, ip)) = simd::avx512().or_else(simd::avx2) {
        return match space {
            Space::L2 => l2,
            Space::InnerProduct | Space::Cosine => ip,
        };
    }
    match space {
        Space::L2 => l2_portable,
        Space::InnerProduct | Space::Cosine => ip_dist_portable,
    }
}

/// All kernels this CPU can run, for cross-checking in tests.
#[cfg(test)]
fn all_kernels() -> Vec<(&'static str, DistFn, DistFn)> {
    let mut v: Vec<(&'static str, DistFn, DistFn)> = vec![("portable", l2_portable, ip_dist_portable)];
    #[cfg(target_arch = "x86_64")]
    {
        if let Some((l2, ip)) = simd::avx2() {
            v.push(("avx2", l2, ip));
        }
        if let Some((l2, ip)) = simd::avx512() {
            v.push(("avx512", l2, ip));
        }
    }
    v
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
            for (name, l2k, ipk) in all_kernels() {
                assert!((l2k(&a, &b) - l_ref).abs() <= tol, "{name} l2 n={n}");
                assert!((ipk(&a, &b) - (1.0 - d_ref)).abs() <= tol, "{name} ip n={n}");
            }
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
