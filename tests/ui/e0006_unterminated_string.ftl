test "never closed {
}
