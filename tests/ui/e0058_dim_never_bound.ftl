adapter a(x: f32[N, I], lora_A: param f32[R, I], lora_B: param f32[O, R]) -> f32[N, O] {
    x @ lora_A @ lora_B
}

init a {
    lora_A = zeros();
    lora_B = zeros();
}
