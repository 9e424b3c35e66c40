import "../e0013_import_cycle.ftl"

fn b(x: f32) -> f32 { x }
