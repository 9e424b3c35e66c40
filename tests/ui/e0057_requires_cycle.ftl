// Dims bound by `requires` may read each other in any clause order, but not in a cycle.
objective cyc(x: f32[I]) requires K == L + 1, L == K - 1 {
    loss sum(x, I) * f32(K);
}
