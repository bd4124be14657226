//! Medians and percentiles.

/// The `p`-th percentile (0..=100) of `sorted` (ascending), by linear interpolation; 0 if empty.
///
/// ```
/// use conveyor_bench::stats::percentile;
/// assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
/// assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// The median of `values` in any order; `None` if empty.
///
/// ```
/// use conveyor_bench::stats::median;
/// assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
/// assert_eq!(median(&[]), None);
/// ```
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(percentile(&v, 50.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_of_a_hundred() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = percentile(&v, 99.0);
        assert!((p - 99.01).abs() < 1e-9, "{p}");
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
    }
}
