/**
 * @file Tree-sitter grammar for FTL, the language of training objectives, adapters and sampling
 * rules. It follows the compiler's grammar (grammar/src/grammar.lalrpop) for highlighting,
 * folding and navigation; the compiler remains the judge of what is valid.
 */

const PREC = {
  coalesce: 1,
  or: 2,
  and: 3,
  compare: 4,
  add: 5,
  mul: 6,
  unary: 7,
  postfix: 8,
};

const comma = (rule) => optional(seq(rule, repeat(seq(',', rule)), optional(',')));
const comma1 = (rule) => seq(rule, repeat(seq(',', rule)), optional(','));

module.exports = grammar({
  name: 'ftl',

  extras: ($) => [/\s/, $.comment],

  word: ($) => $.identifier,

  rules: {
    source_file: ($) => repeat($._item),

    _item: ($) => choice($.import, $.declaration, $.attached, $.test),

    comment: (_) => token(choice(seq('///', /[^\n]*/), seq('//', /[^\n]*/))),

    import: ($) => seq('import', choice($.module_path, $.string), optional(';')),

    module_path: ($) => seq($.identifier, repeat(seq('.', $.identifier))),

    declaration: ($) =>
      seq(
        field('kind', choice('fn', 'objective', 'adapter', 'step')),
        field('name', $.identifier),
        field('parameters', $.parameters),
        optional(seq('->', field('result', choice($._type, $.named_types)))),
        optional($.requires),
        field('body', $.block),
      ),

    attached: ($) =>
      seq(
        field('kind', choice('init', 'merge', 'unmerge')),
        field('target', $.identifier),
        optional(field('parameters', $.parameters)),
        optional($.requires),
        field('body', $.block),
      ),

    test: ($) => seq('test', field('name', $.string), field('body', $.block)),

    parameters: ($) => seq('(', comma($.parameter), ')'),

    parameter: ($) =>
      seq(
        field('name', $.identifier),
        ':',
        optional(field('role', choice('const', 'param', 'static'))),
        field('type', $._type),
        optional(seq('=', field('default', $._expression))),
      ),

    named_types: ($) => seq('(', comma1($.named_type), ')'),

    named_type: ($) => seq(field('name', $.identifier), ':', field('type', $._type)),

    requires: ($) => seq('requires', comma1($._expression)),

    _type: ($) => choice($.tensor_type, $.enum_type),

    tensor_type: ($) =>
      prec.right(
        seq($.dtype, optional(seq('[', comma($.dim_entry), ']')), optional('?')),
      ),

    enum_type: ($) => seq('enum', '{', comma1($.identifier), '}'),

    dtype: (_) => choice('f64', 'f32', 'bf16', 'f16', 'i64', 'i32', 'bool'),

    dim_entry: ($) =>
      choice($.dim, seq($.dim, '=', $.integer), $.integer, seq('..', $.dim)),

    block: ($) => seq('{', repeat($._statement), optional($._expression), '}'),

    _statement: ($) =>
      choice(
        $.let_statement,
        $.loss_statement,
        $.metric_statement,
        $.assignment,
        $.gradcheck_statement,
        $.expression_statement,
      ),

    let_statement: ($) =>
      seq(
        'let',
        field('pattern', choice($.identifier, $.tuple_pattern)),
        optional(seq(':', field('type', $._type))),
        '=',
        field('value', $._expression),
        ';',
      ),

    tuple_pattern: ($) => seq('(', comma1($.identifier), ')'),

    loss_statement: ($) => seq('loss', $._expression, ';'),

    metric_statement: ($) =>
      seq('metric', choice(seq(field('name', $.identifier), '=', $._expression), seq('..', $._expression)), ';'),

    assignment: ($) => seq(field('name', $.identifier), '=', field('value', $._expression), ';'),

    gradcheck_statement: ($) =>
      seq('gradcheck', $._path, optional(seq('(', comma($.argument), ')')), ';'),

    _path: ($) => choice($.identifier, $.path),

    path: ($) => seq($._path, '.', $.identifier),

    expression_statement: ($) => seq($._expression, ';'),

    _expression: ($) =>
      choice($.binary_expression, $.comparison, $.unary_expression, $._postfix),

    binary_expression: ($) =>
      choice(
        prec.right(PREC.coalesce, seq($._expression, '??', $._expression)),
        prec.left(PREC.or, seq($._expression, '||', $._expression)),
        prec.left(PREC.and, seq($._expression, '&&', $._expression)),
        prec.left(PREC.add, seq($._expression, choice('+', '-'), $._expression)),
        prec.left(PREC.mul, seq($._expression, choice('*', '/', '%', '@'), $._expression)),
      ),

    comparison: ($) =>
      prec.left(
        PREC.compare,
        seq(
          $._expression,
          repeat1(prec.left(PREC.compare, seq(choice('==', '!=', '<', '<=', '>', '>='), $._expression))),
        ),
      ),

    unary_expression: ($) => prec(PREC.unary, seq(choice('-', '!'), $._expression)),

    _postfix: ($) =>
      choice($.call, $.cast, $.field_expression, $.index_expression, $._primary),

    call: ($) =>
      prec(PREC.postfix, seq(field('function', $._postfix), '(', comma($.argument), ')')),

    cast: ($) => prec(PREC.postfix, seq($.dtype, '(', $._expression, ')')),

    field_expression: ($) =>
      prec(PREC.postfix, seq($._postfix, '.', field('field', choice($.identifier, $._field_keyword)))),

    _field_keyword: ($) =>
      alias(choice('loss', 'metric', 'param', 'init', 'merge', 'unmerge', 'step', 'test'), $.identifier),

    index_expression: ($) =>
      prec(PREC.postfix, seq($._postfix, '[', comma1($._index_entry), ']')),

    _index_entry: ($) => choice($.gather, $.reshape, $.swap),

    gather: ($) =>
      seq($.dim, ':', $._expression, optional(seq('else', $._expression))),

    reshape: ($) => seq($.dim_pattern, '->', $.dim_pattern),

    swap: ($) => seq($.dim, '<->', $.dim),

    dim_pattern: ($) => choice($.dim, seq('(', comma1($.dim), ')'), seq('..', $.dim)),

    argument: ($) =>
      choice(
        $._expression,
        seq(field('name', choice($.identifier, $.dim)), ':', $._expression),
        seq($.dim, '->', $.dim),
      ),

    _primary: ($) =>
      choice(
        $.integer,
        $.float,
        $.boolean,
        $.identifier,
        $.dim,
        $.pack,
        $.parenthesized,
        $.record,
        $.tensor,
        $.if_expression,
        $.for_expression,
        $.match_expression,
      ),

    parenthesized: ($) => seq('(', $._expression, ')'),

    record: ($) => seq('(', comma1($.record_field), ')'),

    record_field: ($) => seq(field('name', $.identifier), ':', field('value', $._expression)),

    tensor: ($) => seq('[', comma1($._expression), ']'),

    if_expression: ($) =>
      seq('if', field('condition', $._expression), field('then', $.block), 'else', field('else', choice($.block, $.if_expression))),

    for_expression: ($) =>
      seq(
        'for',
        field('variable', $.identifier),
        'in',
        $._expression,
        '..',
        $._expression,
        ',',
        field('accumulator', $.identifier),
        '=',
        $._expression,
        field('body', $.block),
      ),

    match_expression: ($) =>
      seq('match', field('value', $._expression), '{', comma($.match_arm), '}'),

    match_arm: ($) =>
      seq(field('pattern', choice($.identifier, $.integer, $.boolean)), '=>', field('value', $._expression)),

    pack: ($) => seq('..', $.dim),

    boolean: (_) => choice('true', 'false'),

    integer: (_) => /[0-9]+/,

    float: (_) => token(choice(/[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?/, /[0-9]+[eE][+-]?[0-9]+/)),

    string: (_) => token(seq('"', repeat(choice(/[^"\\\n]/, /\\./)), '"')),

    identifier: (_) => /[a-z_][A-Za-z0-9_]*/,

    dim: (_) => /[A-Z][A-Za-z0-9_]*'*/,
  },
});
