// An import never changes what a builtin's name means (issue 13): std.objectives.dpo declares
// an objective `sigmoid`, called qualified; the bare name stays the builtin.
import std.objectives.dpo

objective squashed(x: f32[B]) {
    loss sum(sigmoid(x), B);
}

test "a builtin's name is the builtin after an import that declares it" {
    let r = squashed(x: [0.0, 2.0]);
    // sigmoid(0) + sigmoid(2)
    expect_close(r.loss, 1.3807970779778824, 1e-6);
    let d = dpo.sigmoid(
        chosen_logps: [-1.0],
        rejected_logps: [-1.0],
        ref_chosen_logps: [-1.0],
        ref_rejected_logps: [-1.0],
    );
    expect_close(d.loss, 0.6931471805599453, 1e-6);
}
