import "./sub/cycle_b.ftl"

fn a(x: f32) -> f32 { x }
