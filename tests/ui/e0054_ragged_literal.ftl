test "ragged" {
    expect_close([[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0]], 1e-6);
}
