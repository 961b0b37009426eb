//! The statistics of a numeric column computed as numpy and scikit-learn
//! compute them, down to the order of additions: numpy's pairwise sum,
//! `StandardScaler`'s mean and variance, the median and the mode.

use std::hash::Hasher;

use crate::column::ColumnStore;

/// numpy's `pairwise_sum` (`numpy/_core/src/umath/loops_utils.h.src`) over
/// `n` values given by `value(i)`: blocks of at most 128 summed with eight
/// accumulators, larger ranges halved at a multiple of 8. `np.sum` of a
/// contiguous float64 column adds exactly this way.
pub fn pairwise_sum(n: usize, value: &impl Fn(usize) -> f64) -> f64 {
    pairwise(0, n, value)
}

fn pairwise(start: usize, n: usize, value: &impl Fn(usize) -> f64) -> f64 {
    const BLOCK: usize = 128;
    if n < 8 {
        let mut res = 0.0;
        for i in start..start + n {
            res += value(i);
        }
        res
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        for (j, slot) in r.iter_mut().enumerate() {
            *slot = value(start + j);
        }
        let mut i = 8;
        while i < n - n % 8 {
            for (j, slot) in r.iter_mut().enumerate() {
                *slot += value(start + i + j);
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += value(start + i);
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(start, n2, value) + pairwise(start + n2, n - n2, value)
    }
}

/// `StandardScaler`'s `mean_` and `var_` of a column
/// (`sklearn.utils.extmath._incremental_mean_and_var` on a first fit): the
/// mean is sum / n; the variance is the corrected two-pass one, divided by n.
pub fn mean_and_variance(n: usize, value: &impl Fn(usize) -> f64) -> (f64, f64) {
    let count = n as f64;
    let mean = pairwise_sum(n, value) / count;
    let correction = pairwise_sum(n, &|i| value(i) - mean);
    let squares = pairwise_sum(n, &|i| {
        let t = value(i) - mean;
        t * t
    });
    let unnormalized = squares - correction * correction / count;
    (mean, unnormalized / count)
}

/// The mean imputer's fill (`np.ma.mean`): the sum with missing values as
/// zeros, divided by the count of observed values. None when all are missing.
pub fn observed_mean(column: &ColumnStore, observed: u64) -> Option<f64> {
    (observed > 0).then(|| pairwise_sum(column.len(), &|i| column.get_or(i, 0.0)) / observed as f64)
}

/// `StandardScaler`'s scale for a column: the population standard deviation,
/// or 1.0 when the variance is zero up to rounding
/// (`sklearn.preprocessing._data._is_constant_feature`).
pub fn scale_of(variance: f64, mean: f64, n: u64) -> f64 {
    let eps = f64::EPSILON;
    let n = n as f64;
    let upper_bound = n * eps * variance + (n * mean * eps).powi(2);
    if variance <= upper_bound {
        1.0
    } else {
        variance.sqrt()
    }
}

/// The median of sorted (value, count) pairs as numpy computes it: the
/// middle value of an odd count, `(a + b) / 2` of the two middle values of
/// an even one. None when empty.
pub fn median(pairs: &[(f64, u64)]) -> Option<f64> {
    let n: u64 = pairs.iter().map(|p| p.1).sum();
    if n == 0 {
        return None;
    }
    // The value at zero-based position `k` of the sorted column.
    let at = |k: u64| {
        let mut seen = 0;
        pairs
            .iter()
            .find(|&&(_, c)| {
                seen += c;
                k < seen
            })
            .map_or(f64::NAN, |p| p.0)
    };
    if n % 2 == 1 {
        Some(at(n / 2))
    } else {
        Some((at(n / 2 - 1) + at(n / 2)) / 2.0)
    }
}

/// The most frequent value of sorted (value, count) pairs; ties go to the
/// smallest, as `scipy.stats.mode` (and so `SimpleImputer(strategy=
/// "most_frequent")`) picks. None when empty.
pub fn most_frequent(pairs: &[(f64, u64)]) -> Option<f64> {
    let mut best: Option<(f64, u64)> = None;
    for &(v, c) in pairs {
        // Strictly greater: the first (smallest) value of a tie stays.
        let better = match best {
            None => true,
            Some((_, best_count)) => c > best_count,
        };
        if better {
            best = Some((v, c));
        }
    }
    best.map(|(v, _)| v)
}

/// A hasher for f64 bit patterns: one multiply and a fold. The keys come
/// from training files, not from an adversary, so SipHash's protection is
/// not needed and its cost is.
#[derive(Default, Clone, Copy)]
pub struct BitsHasher(u64);

impl Hasher for BitsHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        let product = u128::from(self.0 ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(values: &[f64]) -> f64 {
        pairwise_sum(values.len(), &|i| values[i])
    }

    #[test]
    fn pairwise_sum_groups_like_numpy() {
        // Below 8 values: left to right. 1e16 + 1 + 1 loses both ones.
        assert_eq!(sum_of(&[1e16, 1.0, 1.0]), 1e16);
        // 8..=128 values: eight accumulators, combined as
        // ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), so the two ones
        // meet each other before 1e16: 1e16 + 2 (representable).
        let mut v = [0.0; 8];
        v[0] = 1e16;
        v[2] = 1.0;
        v[3] = 1.0;
        assert_eq!(sum_of(&v), 1e16 + 2.0);
        // Left to right gives 1e16: each 1e16 + 1 ties to the even 1e16.
        assert_eq!(v.iter().fold(0.0, |a, b| a + b), 1e16);
    }

    #[test]
    fn pairwise_sum_of_many_values_is_exact_for_integers() {
        let values: Vec<f64> = (1..=10_000).map(f64::from).collect();
        assert_eq!(sum_of(&values), 50_005_000.0);
        assert_eq!(sum_of(&[]), 0.0);
    }

    #[test]
    fn mean_and_population_variance() {
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (mean, variance) = mean_and_variance(values.len(), &|i| values[i]);
        assert_eq!(mean, 5.0);
        assert_eq!(variance, 4.0);
    }

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&[(1.0, 1), (2.0, 1), (3.0, 1)]), Some(2.0));
        assert_eq!(median(&[(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)]), Some(2.5));
        assert_eq!(median(&[(1.0, 2), (5.0, 2)]), Some(3.0));
        assert_eq!(median(&[]), None);
        // (a + b) / 2 exactly: 0.1 + 0.2 is 0.30000000000000004 in f64.
        assert_eq!(median(&[(0.1, 1), (0.2, 1)]), Some(0.15000000000000002));
    }

    #[test]
    fn most_frequent_breaks_ties_to_the_smallest() {
        assert_eq!(most_frequent(&[(2.0, 2), (5.0, 2), (9.0, 1)]), Some(2.0));
        assert_eq!(most_frequent(&[(2.0, 1), (5.0, 2), (9.0, 1)]), Some(5.0));
        assert_eq!(most_frequent(&[]), None);
    }

    #[test]
    fn constant_columns_get_scale_one() {
        assert_eq!(scale_of(0.0, 5.0, 10), 1.0);
        // Rounding noise around a large mean is still constant.
        assert_eq!(scale_of(1e-20, 1e6, 100), 1.0);
        assert_eq!(scale_of(4.0, 5.0, 8), 2.0);
    }
}
