adapter a(x: f32[N, I], weight: const f32[O, I], lora_A: param f32[R, I], lora_B: param f32[O, R]) -> f32[N, O] {
    x @ weight + x @ lora_A @ lora_B
}

merge a {
    x = weight;
}
