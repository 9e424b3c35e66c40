import "../../../../etc/passwd"

fn f(x: f32) -> f32 { x }
