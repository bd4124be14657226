//! The side-by-side passes the benches print after criterion's groups: every peer measured in
//! short alternating slices of one run, so that all see the same machine state. Included by
//! each bench that has such a pass (`#[path = "common/side.rs"] mod side;`).

/// The median of `v` (the upper one of an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `rounds` rounds of `run(peer)` for each of `peers` peers, starting each round with the
/// next peer so that none always follows another; returns each peer's median.
pub(crate) fn alternate(
    rounds: usize,
    peers: usize,
    mut run: impl FnMut(usize) -> f64,
) -> Vec<f64> {
    let mut all = vec![Vec::with_capacity(rounds); peers];
    for round in 0..rounds {
        for k in 0..peers {
            let peer = (round + k) % peers;
            all[peer].push(run(peer));
        }
    }
    all.into_iter().map(median).collect()
}
