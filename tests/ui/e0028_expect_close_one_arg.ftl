// Found by fuzzing (scripts/fuzz.sh, front): a test statement calling expect_close with too few
// arguments made the checker index a missing one and panic (two are now a valid form).
test "one argument" { expect_close(1.0); }
