import numpy.linalg

fn f(x: f32) -> f32 { x }
