(comment) @comment
(string) @string
(integer) @number
(float) @number
(boolean) @constant.builtin
(dtype) @type.builtin
(dim) @type
(pack (dim) @type)

[
  "import" "fn" "objective" "adapter" "step" "init" "merge" "unmerge" "test" "let" "loss"
  "metric" "const" "param" "static" "enum" "if" "else" "for" "in" "match" "requires"
  "gradcheck"
] @keyword

(declaration name: (identifier) @function)
(attached target: (identifier) @function)
(call function: (identifier) @function.call)
(call function: (field_expression field: (identifier) @function.call))
(parameter name: (identifier) @variable.parameter)
(argument name: (identifier) @property)
(record_field name: (identifier) @property)
(named_type name: (identifier) @property)
(field_expression field: (identifier) @property)
(module_path (identifier) @module)

[
  "+" "-" "*" "/" "%" "@" "??" "||" "&&" "==" "!=" "<" "<=" ">" ">=" "!" "=" "->" "<->" "=>" ".."
] @operator

["(" ")" "[" "]" "{" "}"] @punctuation.bracket
["," ";" ":" "."] @punctuation.delimiter
