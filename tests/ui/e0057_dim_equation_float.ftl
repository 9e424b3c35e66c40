fn f(x: f32[B], r: f32 = 8.0) -> f32[B] requires R == r { x }
