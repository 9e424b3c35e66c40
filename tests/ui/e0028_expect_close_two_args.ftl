// Found by fuzzing (scripts/fuzz.sh, front): a test statement calling expect_close with two
// arguments made the checker index a third one and panic.
test "two arguments" { expect_close(1.0, 2.0); }
