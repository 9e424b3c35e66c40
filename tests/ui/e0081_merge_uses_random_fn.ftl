fn jittered(w: f32[O, I]) -> f32[O, I] {
    w + randn(O, I)
}

adapter a(x: f32[N, I], weight: const f32[O, I], lora_B: param f32[O, I]) -> f32[N, O] {
    let noisy = jittered(lora_B);
    x @ (weight + noisy)
}

merge a {
    weight = weight + noisy;
}
