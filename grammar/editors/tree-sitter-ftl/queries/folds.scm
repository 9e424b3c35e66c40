[
  (block)
  (parameters)
  (match_expression)
  (record)
  (tensor)
  (call)
] @fold
