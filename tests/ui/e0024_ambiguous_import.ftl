import "./sub/amb_a.ftl"
import "./sub/amb_b.ftl"

fn g(x: f32) -> f32 { helper(x) }
