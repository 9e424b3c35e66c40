import "./no_such_file.ftl"

fn f(x: f32) -> f32 { x }
