// Index helpers for methods that gather triangles of matrices (OFT's skew blocks, KaSA, SVFT).

/// `torch.triu_indices(size, size, offset)` for `offset = diagonal ≥ 0` (named as `torch.triu`'s
/// argument, since `offset` is FTL's random-stream setting): the row and column of each of the
/// N entries on or above the `diagonal`-th diagonal of a `size × size` matrix, row-major, as two
/// i32 vectors (N = m(m + 1)/2 with m = max(size − diagonal, 0)). Row r starts at
/// `r·m − r(r − 1)/2`; an entry's row is the number of later row starts at or before it.
step triu_indices(size: i32, diagonal: i32 = 0) -> (rows: i32[N], cols: i32[N]) requires K == size,
    N == floordiv(max(size - diagonal, 0) * (max(size - diagonal, 0) + 1), 2), size >= 0,
    diagonal >= 0 {
    let m = max(size - diagonal, 0);
    let n = iota(N);
    let r = iota(K);
    let start = r * m - floordiv(r * (r - 1), 2);
    let row = i32(sum(f32(r >= 1 && r < m && start <= n), K));
    let first = row * m - floordiv(row * (row - 1), 2);
    (rows: row, cols: n - first + row + diagonal)
}

test "triu_indices are torch.triu_indices'" {
    // torch 2.15: triu_indices(4, 4, 1), (5, 5, 0), (3, 3, 2).
    let a = triu_indices(size: 4, diagonal: 1);
    expect_close(a.rows, [0, 0, 0, 1, 1, 2], 0.0);
    expect_close(a.cols, [1, 2, 3, 2, 3, 3], 0.0);
    let b = triu_indices(size: 5);
    expect_close(b.rows, [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4], 0.0);
    expect_close(b.cols, [0, 1, 2, 3, 4, 1, 2, 3, 4, 2, 3, 4, 3, 4, 4], 0.0);
    let c = triu_indices(size: 3, diagonal: 2);
    expect_close(c.rows, [0], 0.0);
    expect_close(c.cols, [2], 0.0);
}
