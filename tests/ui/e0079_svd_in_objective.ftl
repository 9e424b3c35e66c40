objective o(w: f32[O, I]) {
    let (u, s, vh) = svd(w, O, I -> K);
    loss sum(s, K);
}
