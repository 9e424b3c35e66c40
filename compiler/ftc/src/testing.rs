//! `ftc test`: runs every `test` block of the root files. A test's `let`s are lowered into a
//! graph of constants; a call of an objective, adapter or step compiles that entry (with its
//! gradients) and runs it on the argument values on the chosen backend, exactly as `ftc run`
//! would; `expect_close` compares with |actual − expected| ≤ tol · (1 + |expected|); `gradcheck` runs finite
//! differences in f64.

use crate::run::{self, GRADCHECK_TOL};
use ftl_front::hir::{self, DeclId, DeclKind, Stmt};
use ftl_front::types::Ty;
use ftl_front::Analysis;
use ftl_interp::Interp;
use ftl_ir::lower::{
    self, is_static, EntryCalls, EntryOptions, LowerError, Lowerer, StaticValue, Val,
};
use ftl_ir::pipeline::{self, Failure};
use ftl_ir::{EntryKind, Graph, Op, Role};
use ftl_runtime::{DType, Tensor};
use std::collections::{BTreeMap, HashMap};

/// The outcome of one test block.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    /// `module::test "name"`.
    pub name: String,
    /// Failures (empty: passed).
    pub failures: Vec<String>,
    /// What its `print` statements showed, in order.
    pub printed: Vec<String>,
}

/// A failed call of an entry, as the lowering of the test sees it.
fn call_failed(f: Failure) -> LowerError {
    LowerError::CallFailed(f.messages().join("; "))
}

/// The value of a node of a constant graph.
/// Lowers and evaluates one expression of a test.
fn value<'h>(
    lw: &mut Lowerer<'h, '_>,
    frame: &mut lower::Frame<'h>,
    e: hir::ExprId,
) -> Result<Tensor, LowerError> {
    let id = lw.node(frame, e)?;
    eval(&lw.b.graph, id)
}

fn eval(graph: &Graph, id: ftl_ir::NodeId) -> Result<Tensor, LowerError> {
    let mut it = Interp::new(graph, &HashMap::new()).map_err(|e| call_failed(e.into()))?;
    it.tensor(id).map_err(|e| call_failed(e.into()))
}

/// Runs entries called from tests.
struct TestCalls<'h> {
    hir: &'h hir::Hir,
    backend: run::Backend,
}

impl EntryCalls for TestCalls<'_> {
    fn call(
        &mut self,
        graph: &Graph,
        decl: DeclId,
        args: &[Option<Val>],
    ) -> Result<Vec<(String, Tensor)>, LowerError> {
        let callee = self
            .hir
            .decl(decl)
            .ok_or_else(|| LowerError::Internal("unchecked callee".into()))?;
        let mut opts = EntryOptions::default();
        let mut inputs = HashMap::new();
        for (p, a) in callee.params.iter().zip(args) {
            let Some(v) = a else { continue };
            match v {
                Val::Variant(x) => {
                    opts.statics
                        .insert(p.name.clone(), StaticValue::Variant(x.clone()));
                }
                Val::Node(n) if is_static(p) => {
                    let Op::Const(c) = graph.node(*n).op else {
                        return Err(LowerError::Unsupported(format!(
                            "`{}` must be a constant",
                            p.name
                        )));
                    };
                    let sv = match p.ty.tensor().map(|t| t.dtype) {
                        Some(DType::Bool) => StaticValue::Bool(c != 0.0),
                        _ => StaticValue::Int(c as i64),
                    };
                    opts.statics.insert(p.name.clone(), sv);
                }
                Val::Node(n) => {
                    let t = eval(graph, *n)?;
                    let dtype = p.ty.tensor().map_or(t.dtype(), |t| t.dtype);
                    if p.optional {
                        opts.present.insert(p.name.clone());
                    }
                    inputs.insert(p.name.clone(), t.cast(dtype));
                }
                Val::Absent => {}
                _ => {
                    return Err(LowerError::Unsupported(format!(
                        "`{}` is not a tensor",
                        p.name
                    )))
                }
            }
        }
        let grad = callee.kind.differentiable();
        let g = pipeline::compile(self.hir, decl, &opts, grad).map_err(call_failed)?;
        if g.kind == EntryKind::Adapter {
            // Gradients of Σ outputs: an upstream gradient of ones.
            let fwd = run::run_graph(&g, &inputs).map_err(call_failed)?;
            for inp in g.inputs.iter().filter(|i| i.role == Role::Upstream) {
                let out = inp.name.trim_start_matches("grad.");
                if let Some((_, y)) = fwd.iter().find(|(n, _)| n == out) {
                    let ones = vec![1.0; y.len()];
                    inputs.insert(
                        inp.name.clone(),
                        Tensor::from_f64(y.dtype(), y.shape(), &ones),
                    );
                }
            }
        }
        run::run_on(self.backend, &g, &inputs).map_err(call_failed)
    }
}

/// Runs the test blocks of the analysed root files.
pub fn run_tests(analysis: &Analysis, backend: run::Backend) -> Vec<TestOutcome> {
    let mut out = Vec::new();
    for (_, d) in analysis.root_decls() {
        if d.kind != DeclKind::Test {
            continue;
        }
        let mut printed = Vec::new();
        let failures = match run_one(&analysis.hir, d, backend, &mut printed) {
            Ok(f) => f,
            Err(e) => vec![e.to_string()],
        };
        out.push(TestOutcome {
            name: d.name.clone(),
            failures,
            printed,
        });
    }
    out
}

fn run_one(
    hir: &hir::Hir,
    d: &hir::Decl,
    backend: run::Backend,
    printed: &mut Vec<String>,
) -> Result<Vec<String>, LowerError> {
    let mut calls = TestCalls { hir, backend };
    let mut lw = Lowerer::new(
        hir,
        &d.name,
        EntryKind::Step,
        EntryOptions::default(),
        Some(&mut calls),
    );
    let mut frame = lw.entry_frame(d)?;
    let mut failures = Vec::new();
    for s in &d.body.stmts {
        match s {
            Stmt::ExpectClose(a, e, tolerance) => {
                let mut text = format!(
                    "expect_close({}, {}",
                    hir::expr_text(hir, &d.body, *a),
                    hir::expr_text(hir, &d.body, *e),
                );
                let actual = value(&mut lw, &mut frame, *a)?;
                // A literal expectation is read at the dtype of what it is compared with, so
                // f64 results are checked against the written digits, not their f32 rounding.
                let expected = match lower::exact_literal(d, *e) {
                    Some(v) => v.into_iter().map(|x| actual.dtype().round(x)).collect(),
                    None => value(&mut lw, &mut frame, *e)?.to_f64(),
                };
                let rule = match *tolerance {
                    hir::Tolerance::Scaled(t) => {
                        text += &format!(", {}", hir::expr_text(hir, &d.body, t));
                        Rule::Scaled(value(&mut lw, &mut frame, t)?.to_f64()[0])
                    }
                    hir::Tolerance::Close { rtol, atol } => {
                        let (dr, da) = default_tolerances(actual.dtype());
                        let mut get = |x: Option<hir::ExprId>, name: &str, default: f64| {
                            x.map_or(Ok(default), |x| {
                                text += &format!(", {name}: {}", hir::expr_text(hir, &d.body, x));
                                value(&mut lw, &mut frame, x).map(|t| t.to_f64()[0])
                            })
                        };
                        let rtol = get(rtol, "rtol", dr)?;
                        let atol = get(atol, "atol", da)?;
                        Rule::Close { rtol, atol }
                    }
                };
                text += ")";
                if let Some(m) = compare(&actual.to_f64(), actual.shape(), &expected, rule) {
                    failures.push(format!("{text}: {m}"));
                }
            }
            Stmt::Print(x) => {
                let t = value(&mut lw, &mut frame, *x)?;
                printed.push(format!(
                    "{} = {}",
                    hir::expr_text(hir, &d.body, *x),
                    show(&t)
                ));
            }
            Stmt::Gradcheck(target, args) => {
                if let Some(m) = gradcheck_stmt(hir, d, &mut lw, &mut frame, *target, args)? {
                    failures.push(m);
                }
            }
            other => lw.stmt(&mut frame, other)?,
        }
    }
    Ok(failures)
}

/// A value as `print` shows it: dtype, shape and up to 64 values.
fn show(t: &Tensor) -> String {
    let values = t.to_f64();
    let mut shown: Vec<String> = values.iter().take(64).map(|v| format!("{v}")).collect();
    if values.len() > 64 {
        shown.push(format!("… {} more", values.len() - 64));
    }
    let dims: Vec<String> = t.shape().iter().map(usize::to_string).collect();
    format!("{}[{}] [{}]", t.dtype(), dims.join(", "), shown.join(", "))
}

/// How `expect_close` compares one element.
#[derive(Clone, Copy)]
enum Rule {
    /// `|a − e| ≤ tol·(1 + |e|)`.
    Scaled(f64),
    /// PyTorch's `assert_close`: `|a − e| ≤ atol + rtol·|e|` (equal infinities pass, NaN fails).
    Close { rtol: f64, atol: f64 },
}

/// PyTorch's `assert_close` defaults `(rtol, atol)` for a dtype (integers compare exactly).
fn default_tolerances(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F64 => (1e-7, 1e-7),
        DType::F32 => (1.3e-6, 1e-5),
        DType::F16 => (1e-3, 1e-5),
        DType::BF16 => (1.6e-2, 1e-5),
        _ => (0.0, 0.0),
    }
}

/// The row-major multi-index of flat position `k` in `shape`.
fn index_of(mut k: usize, shape: &[usize]) -> String {
    let mut idx = vec![0; shape.len()];
    for (i, n) in shape.iter().enumerate().rev() {
        if *n > 0 {
            idx[i] = k % n;
            k /= n;
        }
    }
    let parts: Vec<String> = idx.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// `None` when every element is within tolerance, else the number of mismatches and the worst
/// one (by absolute difference) with its index, as PyTorch's `assert_close` reports.
fn compare(actual: &[f64], shape: &[usize], expected: &[f64], rule: Rule) -> Option<String> {
    if actual.len() != expected.len() && expected.len() != 1 {
        return Some(format!(
            "{} values where {} were expected",
            actual.len(),
            expected.len()
        ));
    }
    let mut mismatches = 0;
    let mut worst: Option<(usize, f64)> = None;
    for (i, a) in actual.iter().enumerate() {
        let e = if expected.len() == 1 {
            expected[0]
        } else {
            expected[i]
        };
        let diff = (a - e).abs();
        let ok = match rule {
            Rule::Scaled(tol) => diff <= tol * (1.0 + e.abs()),
            Rule::Close { rtol, atol } => a == &e || diff <= atol + rtol * e.abs(),
        };
        if !ok {
            mismatches += 1;
            let key = if diff.is_nan() { f64::INFINITY } else { diff };
            if worst.is_none_or(|(_, w)| key > w) {
                worst = Some((i, key));
            }
        }
    }
    let (i, _) = worst?;
    let e = if expected.len() == 1 {
        expected[0]
    } else {
        expected[i]
    };
    let a = actual[i];
    Some(format!(
        "{mismatches} of {} elements differ; the worst at {}: actual {a:.12}, expected {e:.12} (difference {:.3e})",
        actual.len(),
        index_of(i, shape),
        (a - e).abs()
    ))
}

fn gradcheck_stmt<'h>(
    hir: &'h hir::Hir,
    test: &'h hir::Decl,
    lw: &mut Lowerer<'h, '_>,
    frame: &mut lower::Frame<'h>,
    target: DeclId,
    args: &[(String, hir::ExprId)],
) -> Result<Option<String>, LowerError> {
    let callee = hir
        .decl(target)
        .ok_or_else(|| LowerError::Internal("unchecked gradcheck target".into()))?;
    let mut dims = BTreeMap::new();
    let mut sets = HashMap::new();
    let mut opts = EntryOptions::default();
    for (name, e) in args {
        if let hir::ExprKind::Variant(v) = &test.body.expr(*e).kind {
            opts.statics
                .insert(name.clone(), StaticValue::Variant(v.clone()));
            continue;
        }
        let id = lw.node(frame, *e)?;
        let v = eval(&lw.b.graph, id)?.to_f64()[0];
        match callee.params.iter().find(|p| p.name == *name) {
            Some(p) if is_static(p) => {
                let sv = match &p.ty {
                    Ty::Tensor(t) if t.dtype == DType::Bool => StaticValue::Bool(v != 0.0),
                    _ => StaticValue::Int(v as i64),
                };
                opts.statics.insert(name.clone(), sv);
            }
            Some(p) => {
                let dtype = p.ty.tensor().map_or(DType::F32, |t| t.dtype);
                sets.insert(name.clone(), Tensor::scalar(dtype, v));
            }
            None => {
                dims.insert(name.clone(), vec![v as usize]);
            }
        }
    }
    let report = run::gradcheck(hir, target, &dims, &sets, &opts).map_err(|f| {
        LowerError::CallFailed(format!(
            "gradcheck {}: {}",
            callee.name,
            f.messages().join("; ")
        ))
    })?;
    let worst = report.worst();
    if worst <= GRADCHECK_TOL {
        return Ok(None);
    }
    let detail: Vec<String> = report
        .inputs
        .iter()
        .map(|(n, k, e)| format!("{n}: {k} elements, max relative error {e:.2e}"))
        .collect();
    Ok(Some(format!(
        "gradcheck {} failed (tolerance {GRADCHECK_TOL:e}): {}",
        callee.name,
        detail.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_counts_mismatches_and_names_the_worst_element() {
        let close = Rule::Close {
            rtol: 1.3e-6,
            atol: 1e-5,
        };
        let (a, e) = ([1.0, 2.0, 3.0, 4.0], [1.0, 2.5, 3.0, 5.0]);
        let m = compare(&a, &[2, 2], &e, close).unwrap();
        assert_eq!(
            m,
            "2 of 4 elements differ; the worst at [1, 1]: actual 4.000000000000, \
             expected 5.000000000000 (difference 1.000e0)"
        );
        assert!(compare(&[f64::INFINITY], &[1], &[f64::INFINITY], close).is_none());
        assert!(compare(&[f64::NAN], &[1], &[f64::NAN], close).is_some());
        assert!(compare(&a, &[4], &[1.0, 2.0, 3.0, 4.00001], close).is_none());
        assert!(compare(&a, &[4], &[1.0, 2.0, 3.0, 4.0001], close).is_some());
        assert!(compare(&[1.05], &[1], &[1.0], Rule::Scaled(0.03)).is_none());
    }
}
