objective o(w: f32[R, C]) {
    let (perm, l, u) = lu(w, R, C);
    loss sum(u, R, C);
}
