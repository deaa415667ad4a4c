//! The three distance functions, with Chroma's definitions.
//!
//! Loops run over fixed-width chunks with independent accumulators so the compiler vectorises
//! them; the result differs from a naive loop only by float rounding.

use crate::collection::Space;

const LANES: usize = 8;

/// Squared Euclidean distance.
#[must_use]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| (x - y) * (x - y)).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Dot product.
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `1 - dot(a, b)`: Chroma's `ip` distance.
#[must_use]
pub fn inner_product_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot(a, b)
}

/// `1 - cos(a, b)`, computed as hnswlib does: both vectors normalised, then `1 - dot`.
#[must_use]
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot(&normalized(a), &normalized(b))
}

/// `v / |v|`; a zero vector is returned unchanged (as hnswlib does, avoiding a division by zero).
#[must_use]
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

/// The distance between `a` and `b` in `space`.
#[must_use]
pub fn distance(space: Space, a: &[f32], b: &[f32]) -> f32 {
    match space {
        Space::L2 => l2_squared(a, b),
        Space::Ip => inner_product_distance(a, b),
        Space::Cosine => cosine_distance(a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    #[test]
    fn kernels_match_scalar_reference() {
        for n in [1usize, 3, 8, 9, 17, 384] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive_dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let r = scalar_l2(&a, &b);
            assert!((l2_squared(&a, &b) - r).abs() <= 1e-5 * r.max(1.0));
            assert!((dot(&a, &b) - naive_dot).abs() <= 1e-5 * naive_dot.abs().max(1.0));
        }
    }

    #[test]
    fn spaces_follow_chroma_definitions() {
        let (a, b) = ([1.0, 0.0], [2.0, 0.0]);
        assert!((distance(Space::L2, &a, &b) - 1.0).abs() < 1e-6);
        assert!((distance(Space::Ip, &a, &b) - -1.0).abs() < 1e-6);
        assert!(distance(Space::Cosine, &a, &b).abs() < 1e-6);
    }
}
