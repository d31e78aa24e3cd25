//! Nearest-rank percentiles: sort, then pick. One definition for the runner's figures and
//! the bench's, so the two never disagree about what "p99" means.

/// The `p`-quantile (0 < p <= 1) of `samples` by nearest rank: the smallest sample with at
/// least `p` of all samples at or below it. 0 for no samples. Sorts `samples` in place.
pub fn nearest_rank(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_by(f64::total_cmp);
    sorted_nearest_rank(samples, p)
}

/// [`nearest_rank`] over samples already sorted ascending.
pub fn sorted_nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_a_sample() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(nearest_rank(&mut samples, 0.5), 50.0);
        assert_eq!(nearest_rank(&mut samples, 0.9), 90.0);
        assert_eq!(nearest_rank(&mut samples, 0.99), 99.0);
        assert_eq!(nearest_rank(&mut samples, 1.0), 100.0);
        assert_eq!(nearest_rank(&mut [], 0.5), 0.0);
        // Few samples: p99 of five is the largest, p50 the third.
        let mut five = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(nearest_rank(&mut five, 0.99), 5.0);
        assert_eq!(nearest_rank(&mut five, 0.5), 3.0);
        assert_eq!(nearest_rank(&mut [7.0], 0.01), 7.0);
    }
}
