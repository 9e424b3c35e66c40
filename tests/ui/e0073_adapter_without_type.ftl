adapter a(x: f32[N, I], weight: const f32[O, I]) {
    x @ weight
}
