import std.objectives.nothing_here

fn f(x: f32) -> f32 { x }
