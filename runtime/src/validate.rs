//! The manifest verifier: every index in range and every layout consistent, so that no
//! manifest — one the compiler just built, or one read from an artifact on disk — can make
//! the executor index out of bounds, loop forever or call a library routine on buffers whose
//! shapes do not fit it. The compiler runs it on every manifest it builds and the executor on
//! every manifest it is given.

use crate::dims::DimRule;
use crate::manifest::{BufferRole, ContractDecl, KernelDecl, Manifest, Step};
use std::fmt;

/// A manifest that is not self-consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidManifest(pub String);

impl fmt::Display for InvalidManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid manifest: {}", self.0)
    }
}

impl std::error::Error for InvalidManifest {}

struct Checker<'m> {
    m: &'m Manifest,
}

impl Checker<'_> {
    fn dim(&self, d: u32, what: &str) -> Result<(), InvalidManifest> {
        if (d as usize) < self.m.dims.len() {
            Ok(())
        } else {
            Err(InvalidManifest(format!(
                "{what} names dim {d}, which does not exist"
            )))
        }
    }

    fn buffer(&self, b: u32, what: &str) -> Result<(), InvalidManifest> {
        if (b as usize) < self.m.buffers.len() {
            Ok(())
        } else {
            Err(InvalidManifest(format!(
                "{what} names buffer {b}, which does not exist"
            )))
        }
    }

    fn scalar(&self, b: u32, what: &str) -> Result<(), InvalidManifest> {
        self.buffer(b, what)?;
        if self.m.buffers[b as usize].dims.is_empty() {
            Ok(())
        } else {
            Err(InvalidManifest(format!(
                "{what}: buffer {b} is not a scalar"
            )))
        }
    }

    /// A library routine writes `b` through a pointer: it must be (a view of) a buffer the
    /// executor owns, never a caller's input or a literal.
    fn writable(&self, b: u32, what: &str) -> Result<(), InvalidManifest> {
        self.buffer(b, what)?;
        let mut at = b as usize;
        for _ in 0..=self.m.buffers.len() {
            match &self.m.buffers[at].role {
                BufferRole::View(of) if (*of as usize) < self.m.buffers.len() => at = *of as usize,
                BufferRole::Temp | BufferRole::Output(_) => return Ok(()),
                _ => break,
            }
        }
        Err(InvalidManifest(format!(
            "{what} writes buffer {b}, which is not a temporary or an output"
        )))
    }

    fn dims_of(&self, b: u32) -> &[u32] {
        &self.m.buffers[b as usize].dims
    }

    fn has_dim(&self, b: u32, d: u32, what: &str) -> Result<(), InvalidManifest> {
        if self.dims_of(b).contains(&d) {
            Ok(())
        } else {
            Err(InvalidManifest(format!(
                "{what}: buffer {b} has no dim {d}"
            )))
        }
    }

    fn kernel(&self, k: &KernelDecl) -> Result<(), InvalidManifest> {
        let what = format!("kernel `{}`", k.symbol);
        if k.symbol.is_empty()
            || !k
                .symbol
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(InvalidManifest(format!("{what}: not a kernel symbol")));
        }
        for b in &k.buffers {
            self.buffer(*b, &what)?;
        }
        if let Some(d) = k.split {
            self.dim(d, &what)?;
        }
        for d in &k.grid {
            self.dim(*d, &what)?;
        }
        if !k.grid.is_empty() && k.grid.first() != k.split.as_ref() {
            return Err(InvalidManifest(format!(
                "{what}: its grid does not start at its split dim"
            )));
        }
        Ok(())
    }

    /// Each operand's dims are exactly its groups, each group a contiguous run in its layout
    /// (the GEMM addresses a group by the stride of its last dim).
    fn contract(&self, c: &ContractDecl) -> Result<(), InvalidManifest> {
        for b in [c.a, c.b, c.out] {
            self.buffer(b, "a contraction")?;
            if !self.m.buffers[b as usize].dtype.is_float() {
                return Err(InvalidManifest(format!(
                    "a contraction reads buffer {b}, which is not a float"
                )));
            }
        }
        for d in c.batch.iter().chain(&c.m).chain(&c.n).chain(&c.k) {
            self.dim(*d, "a contraction")?;
        }
        let operand = |b: u32, groups: [&[u32]; 3]| -> Result<(), InvalidManifest> {
            let dims = self.dims_of(b);
            let mut all: Vec<u32> = groups.iter().flat_map(|g| g.iter().copied()).collect();
            let mut own = dims.to_vec();
            all.sort_unstable();
            own.sort_unstable();
            if all != own {
                return Err(InvalidManifest(format!(
                    "a contraction's groups do not match the dims of buffer {b}"
                )));
            }
            for g in groups.iter().filter(|g| !g.is_empty()) {
                let start = dims.iter().position(|d| *d == g[0]).unwrap_or(usize::MAX);
                if dims.get(start..start + g.len()) != Some(*g) {
                    return Err(InvalidManifest(format!(
                        "a contraction group is not contiguous in buffer {b}"
                    )));
                }
            }
            Ok(())
        };
        self.writable(c.out, "a contraction")?;
        operand(c.a, [&c.batch, &c.m, &c.k])?;
        operand(c.b, [&c.batch, &c.k, &c.n])?;
        operand(c.out, [&c.batch, &c.m, &c.n])
    }

    fn step(&self, s: &Step) -> Result<(), InvalidManifest> {
        match s {
            Step::Kernel(k) => self.kernel(k),
            Step::Contract(c) => self.contract(c),
            Step::ArgSort { x, out, dim, .. } => {
                self.buffer(*x, "argsort")?;
                self.writable(*out, "argsort")?;
                self.has_dim(*x, *dim, "argsort")?;
                if self.dims_of(*x) != self.dims_of(*out) {
                    return Err(InvalidManifest(
                        "argsort's output does not have its input's dims".into(),
                    ));
                }
                Ok(())
            }
            Step::Decompose {
                part,
                a,
                out,
                row,
                col,
                ..
            } => {
                self.buffer(*a, "a decomposition")?;
                self.writable(*out, "a decomposition")?;
                self.has_dim(*a, *row, "a decomposition")?;
                self.has_dim(*a, *col, "a decomposition")?;
                if *part > 2 || row == col {
                    return Err(InvalidManifest(
                        "a decomposition's part or dims are invalid".into(),
                    ));
                }
                Ok(())
            }
            Step::Sliced {
                dim,
                local,
                start,
                steps,
            } => self.sliced(*dim, local, start, steps),
            Step::Solve { a, b, out, dim } => {
                for x in [a, b] {
                    self.buffer(*x, "solve")?;
                }
                self.writable(*out, "solve")?;
                let ad = self.dims_of(*a);
                let k = ad.len();
                if k < 2 || !ad[k - 2..].contains(dim) || ad[k - 2] == ad[k - 1] {
                    return Err(InvalidManifest(
                        "solve needs a matrix whose last two dims hold the solved dim".into(),
                    ));
                }
                let row = crate::solve::solve_row(ad, dim);
                for d in ad.iter().filter(|d| *d != dim) {
                    self.has_dim(*b, *d, "solve")?;
                }
                let expect: Vec<u32> = self
                    .dims_of(*b)
                    .iter()
                    .map(|d| if *d == row { *dim } else { *d })
                    .collect();
                self.has_dim(*b, row, "solve")?;
                if self.dims_of(*out) != expect.as_slice() {
                    return Err(InvalidManifest(
                        "solve's output does not fit its operands".into(),
                    ));
                }
                Ok(())
            }
        }
    }
}

impl Checker<'_> {
    /// A sliced region: its kernels and GEMMs read each buffer with the dim either as a local
    /// slice or at the slice's rows (the dim outermost), so no slice reaches past its buffer;
    /// what it combines is written only by combining.
    fn sliced(
        &self,
        dim: u32,
        local: &[u32],
        start: &[(u32, crate::manifest::Identity)],
        steps: &[Step],
    ) -> Result<(), InvalidManifest> {
        let what = "a sliced region";
        self.dim(dim, what)?;
        for b in local {
            self.buffer(*b, what)?;
            self.has_dim(*b, dim, what)?;
            if self.m.buffers[*b as usize].role != BufferRole::Temp
                || self
                    .m
                    .buffers
                    .iter()
                    .any(|x| x.role == BufferRole::View(*b))
            {
                return Err(InvalidManifest(format!(
                    "{what}: local buffer {b} is not a plain temporary"
                )));
            }
        }
        for (b, _) in start {
            self.writable(*b, what)?;
            if local.contains(b) {
                return Err(InvalidManifest(format!(
                    "{what}: buffer {b} is both local and combined"
                )));
            }
        }
        let at_rows = |b: u32| -> Result<(), InvalidManifest> {
            let dims = self.dims_of(b);
            if local.contains(&b) || !dims.contains(&dim) || dims.first() == Some(&dim) {
                Ok(())
            } else {
                Err(InvalidManifest(format!(
                    "{what}: buffer {b} has the sliced dim inside"
                )))
            }
        };
        for s in steps {
            match s {
                Step::Kernel(k) => {
                    self.kernel(k)?;
                    for b in &k.buffers {
                        at_rows(*b)?;
                    }
                }
                Step::Contract(c) => {
                    self.contract(c)?;
                    if c.batch.contains(&dim)
                        || [&c.m, &c.n, &c.k]
                            .iter()
                            .any(|g| g.contains(&dim) && g.len() != 1)
                    {
                        return Err(InvalidManifest(format!(
                            "{what}: a GEMM has the sliced dim in a group with others"
                        )));
                    }
                    for b in [c.a, c.b, c.out] {
                        at_rows(b)?;
                    }
                    let summed = c.k.contains(&dim);
                    if summed != start.iter().any(|(b, _)| *b == c.out) {
                        return Err(InvalidManifest(format!(
                            "{what}: a GEMM summing over the sliced dim must combine its output"
                        )));
                    }
                }
                _ => {
                    return Err(InvalidManifest(format!(
                        "{what} holds a step other than a kernel or a GEMM"
                    )))
                }
            }
        }
        Ok(())
    }
}

/// Checks `m` (see the module comment).
pub fn validate(m: &Manifest) -> Result<(), InvalidManifest> {
    let c = Checker { m };
    for (k, d) in m.dims.iter().enumerate() {
        let what = format!("dim {}", d.name);
        for x in d.size.operand_dims() {
            c.dim(x, &what)?;
            if x as usize == k {
                return Err(InvalidManifest(format!("{what} is defined by itself")));
            }
        }
        if let DimRule::Scalar(b) = d.size {
            c.scalar(b, &what)?;
        }
    }
    for (k, b) in m.buffers.iter().enumerate() {
        let what = format!("buffer {k}");
        for (i, d) in b.dims.iter().enumerate() {
            c.dim(*d, &what)?;
            // The language never repeats a dim in a type; strides assume it.
            if b.dims[..i].contains(d) {
                return Err(InvalidManifest(format!("{what} lists dim {d} twice")));
            }
        }
        match &b.role {
            BufferRole::Arg(a) => match m.args.get(*a as usize) {
                Some(arg) if arg.buffer as usize == k && arg.dtype == b.dtype => {}
                _ => {
                    return Err(InvalidManifest(format!(
                        "{what} is not its argument's buffer"
                    )))
                }
            },
            BufferRole::View(_) => {
                // Follow the chain: it must end at a non-view of the same dtype, without a cycle.
                let mut at = k;
                for _ in 0..=m.buffers.len() {
                    match m.buffers[at].role {
                        BufferRole::View(of) => {
                            c.buffer(of, &what)?;
                            if m.buffers[of as usize].dtype != b.dtype {
                                return Err(InvalidManifest(format!(
                                    "{what} views a buffer of another dtype"
                                )));
                            }
                            at = of as usize;
                        }
                        _ => break,
                    }
                }
                if matches!(m.buffers[at].role, BufferRole::View(_)) {
                    return Err(InvalidManifest(format!(
                        "{what} is part of a cycle of views"
                    )));
                }
            }
            BufferRole::Literal(values) => {
                let mut count = 1usize;
                for d in &b.dims {
                    match m.dims[*d as usize].size {
                        DimRule::Const(n) => count = count.saturating_mul(n as usize),
                        _ => {
                            return Err(InvalidManifest(format!(
                                "{what} is a literal of unfixed size"
                            )))
                        }
                    }
                }
                if count != values.len() {
                    return Err(InvalidManifest(format!(
                        "{what} holds {} values for {count} elements",
                        values.len()
                    )));
                }
            }
            BufferRole::Temp | BufferRole::Output(_) => {}
        }
    }
    for (k, a) in m.args.iter().enumerate() {
        c.buffer(a.buffer, &format!("argument `{}`", a.name))?;
        if m.buffers[a.buffer as usize].role != BufferRole::Arg(k as u32) {
            return Err(InvalidManifest(format!(
                "argument `{}` does not own its buffer",
                a.name
            )));
        }
        // A default fills one scalar: its argument must be a scalar.
        if a.default.is_some()
            && !(a.dims.is_empty() && m.buffers[a.buffer as usize].dims.is_empty())
        {
            return Err(InvalidManifest(format!(
                "argument `{}` has a default but is not a scalar",
                a.name
            )));
        }
    }
    if let Some(p) = &m.prelude {
        c.kernel(p)?;
    }
    for check in &m.checks {
        c.scalar(check.buffer, "a check")?;
    }
    for s in &m.steps {
        c.step(s)?;
    }
    for (name, b) in &m.outputs {
        c.buffer(*b, &format!("output `{name}`"))?;
    }
    slices_stay_in_their_region(m)
}

/// A local buffer of a sliced region holds one slice: no step outside the regions it is local
/// to (nor the prelude, a check or an output) may name it, and those regions slice one dim.
fn slices_stay_in_their_region(m: &Manifest) -> Result<(), InvalidManifest> {
    let mut owners: std::collections::HashMap<u32, Vec<usize>> = std::collections::HashMap::new();
    let mut sliced_dim: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    for (k, s) in m.steps.iter().enumerate() {
        if let Step::Sliced { local, dim, .. } = s {
            for b in local {
                owners.entry(*b).or_default().push(k);
                if *sliced_dim.entry(*b).or_insert(*dim) != *dim {
                    return Err(InvalidManifest(format!(
                        "buffer {b} is local to regions slicing different dims"
                    )));
                }
            }
        }
    }
    let named = |s: &Step| -> Vec<u32> {
        match s {
            Step::Kernel(k) => k.buffers.clone(),
            Step::Contract(c) => vec![c.a, c.b, c.out],
            Step::ArgSort { x, out, .. } => vec![*x, *out],
            Step::Decompose { a, out, .. } => vec![*a, *out],
            Step::Solve { a, b, out, .. } => vec![*a, *b, *out],
            Step::Sliced { steps, start, .. } => steps
                .iter()
                .flat_map(|s| match s {
                    Step::Kernel(k) => k.buffers.clone(),
                    Step::Contract(c) => vec![c.a, c.b, c.out],
                    _ => Vec::new(),
                })
                .chain(start.iter().map(|(b, _)| *b))
                .collect(),
        }
    };
    let outside = |b: u32, k: Option<usize>| -> Result<(), InvalidManifest> {
        match owners.get(&b) {
            Some(o) if !k.is_some_and(|k| o.contains(&k)) => Err(InvalidManifest(format!(
                "buffer {b} holds one slice but is used outside its sliced region"
            ))),
            _ => Ok(()),
        }
    };
    for (k, s) in m.steps.iter().enumerate() {
        for b in named(s) {
            outside(b, Some(k))?;
        }
    }
    let elsewhere = m
        .prelude
        .iter()
        .flat_map(|p| p.buffers.iter().copied())
        .chain(m.checks.iter().map(|c| c.buffer))
        .chain(m.outputs.iter().map(|(_, b)| *b))
        .chain(m.args.iter().map(|a| a.buffer));
    for b in elsewhere {
        outside(b, None)?;
    }
    for (k, b) in m.buffers.iter().enumerate() {
        if let BufferRole::View(of) = b.role {
            outside(of, None)?;
            outside(k as u32, None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{BufferDecl, DimDecl};
    use crate::DType;

    fn manifest() -> Manifest {
        Manifest {
            entry: "e".into(),
            kind: "objective".into(),
            args: vec![],
            dims: vec![DimDecl {
                name: "N".into(),
                size: DimRule::Const(2),
            }],
            buffers: vec![
                BufferDecl {
                    dtype: DType::F32,
                    dims: vec![0],
                    role: BufferRole::Literal(vec![1.0, 2.0]),
                },
                BufferDecl {
                    dtype: DType::F32,
                    dims: vec![0],
                    role: BufferRole::View(0),
                },
            ],
            prelude: None,
            checks: vec![],
            steps: vec![],
            outputs: vec![("y".into(), 1)],
        }
    }

    #[test]
    fn out_of_range_indices_cycles_and_bad_literals_are_refused() {
        assert_eq!(validate(&manifest()), Ok(()));
        let mut m = manifest();
        m.outputs[0].1 = 7;
        assert!(validate(&m).unwrap_err().0.contains("buffer 7"));
        let mut m = manifest();
        m.buffers[0].role = BufferRole::View(1);
        assert!(validate(&m).unwrap_err().0.contains("cycle"));
        let mut m = manifest();
        m.buffers[0].role = BufferRole::Literal(vec![1.0]);
        assert!(validate(&m).unwrap_err().0.contains("1 values for 2"));
        let mut m = manifest();
        m.buffers[1].dims = vec![0, 0];
        assert!(validate(&m).unwrap_err().0.contains("lists dim 0 twice"));
        let mut m = manifest();
        m.dims[0].size = DimRule::Product(vec![0]);
        assert!(validate(&m).is_err());
        let mut m = manifest();
        m.steps.push(Step::ArgSort {
            x: 0,
            out: 1,
            dim: 3,
            descending: false,
        });
        assert!(validate(&m).is_err());
    }

    /// A sliced region over dim V = 1 of rows N = 0: `x [N, H]` (arg), `w [V, H]` (arg), the
    /// slice `l [N, V]` (local), `s [N]` (combined), read by a kernel.
    fn sliced() -> Manifest {
        use crate::manifest::{ContractDecl, Identity, KernelDecl};
        let buf = |dims: Vec<u32>, role: BufferRole| BufferDecl {
            dtype: DType::F32,
            dims,
            role,
        };
        let dim = |name: &str| DimDecl {
            name: name.into(),
            size: DimRule::Const(4),
        };
        let arg = |name: &str, dims: [&str; 2], buffer: u32| crate::manifest::ArgDecl {
            name: name.into(),
            dtype: DType::F32,
            dims: dims
                .iter()
                .map(|d| crate::bind::DimSpec::Named(d.to_string()))
                .collect(),
            required: true,
            default: None,
            buffer,
        };
        Manifest {
            entry: "e".into(),
            kind: "objective".into(),
            args: vec![arg("x", ["N", "H"], 0), arg("w", ["V", "H"], 1)],
            dims: vec![dim("N"), dim("V"), dim("H")],
            buffers: vec![
                buf(vec![0, 2], BufferRole::Arg(0)),
                buf(vec![1, 2], BufferRole::Arg(1)),
                buf(vec![0, 1], BufferRole::Temp),
                buf(vec![0], BufferRole::Output("s".into())),
            ],
            prelude: None,
            checks: vec![],
            steps: vec![Step::Sliced {
                dim: 1,
                local: vec![2],
                start: vec![(3, Identity::NegInfinity)],
                steps: vec![
                    Step::Contract(ContractDecl {
                        a: 0,
                        b: 1,
                        out: 2,
                        batch: vec![],
                        m: vec![0],
                        n: vec![1],
                        k: vec![2],
                    }),
                    Step::Kernel(KernelDecl {
                        symbol: "k".into(),
                        buffers: vec![2, 3],
                        split: Some(0),
                        grid: vec![0],
                    }),
                ],
            }],
            outputs: vec![("s".into(), 3)],
        }
    }

    /// A kernel's grid names dims of the manifest and starts at its split dim (a forged grid
    /// could only change a GPU launch's thread count, but is refused like any bad index).
    #[test]
    fn a_kernel_grid_names_dims_from_its_split_dim() {
        let with_grid = |grid: Vec<u32>| {
            let mut m = sliced();
            if let Step::Sliced { steps, .. } = &mut m.steps[0] {
                if let Step::Kernel(k) = &mut steps[1] {
                    k.grid = grid;
                }
            }
            validate(&m)
        };
        assert_eq!(with_grid(vec![]), Ok(()));
        assert_eq!(with_grid(vec![0, 1]), Ok(()));
        assert!(with_grid(vec![9]).is_err());
        assert!(with_grid(vec![0, 9]).is_err());
        assert!(with_grid(vec![1]).unwrap_err().0.contains("grid"));
    }

    #[test]
    fn slices_stay_in_their_region_and_other_buffers_are_read_at_rows() {
        assert_eq!(validate(&sliced()), Ok(()));
        // The slice read by a step after the region would read past its slice-sized memory.
        let mut m = sliced();
        m.steps.push(Step::Kernel(crate::manifest::KernelDecl {
            symbol: "after".into(),
            buffers: vec![2],
            split: None,
            grid: vec![],
        }));
        assert!(validate(&m)
            .unwrap_err()
            .0
            .contains("outside its sliced region"));
        // ... or as an output.
        let mut m = sliced();
        m.outputs.push(("l".into(), 2));
        assert!(validate(&m).is_err());
        // A buffer with the sliced dim inside its layout cannot be addressed at the slice's rows.
        let mut m = sliced();
        m.buffers[1].dims = vec![2, 1];
        m.buffers[0].dims = vec![0, 2];
        if let Step::Sliced { steps, .. } = &mut m.steps[0] {
            steps.truncate(1);
            steps.push(Step::Kernel(crate::manifest::KernelDecl {
                symbol: "k".into(),
                buffers: vec![1],
                split: None,
                grid: vec![],
            }));
        }
        assert!(validate(&m).is_err());
        // A local buffer must be a plain temporary (never an argument the caller owns).
        let mut m = sliced();
        if let Step::Sliced { local, .. } = &mut m.steps[0] {
            local.push(0);
        }
        assert!(validate(&m).is_err());
        // Other steps than kernels and GEMMs have no slice semantics.
        let mut m = sliced();
        if let Step::Sliced { steps, .. } = &mut m.steps[0] {
            steps.push(Step::ArgSort {
                x: 3,
                out: 3,
                dim: 0,
                descending: false,
            });
        }
        assert!(validate(&m).is_err());
    }
}
