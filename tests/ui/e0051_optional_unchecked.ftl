fn f(x: f32[O], bias: f32[O]?) -> f32[O] { x + bias }
