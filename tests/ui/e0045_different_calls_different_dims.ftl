// Calls with different scalar arguments make different requires-bound dims: two(w, 2)'s K
// and two(w, 3)'s K share nothing to contract.
step two(w: f32[O, I], k: i32 = 2) -> (u: f32[O, K], v: f32[K, I]) requires K == k {
    (u: w[I: iota(K)], v: w[O: iota(K)])
}

objective mixed(w: f32[O, I]) {
    loss sum(two(w, 2).u @ two(w, 3).v, O, I);
}
