//! Alignment of named dims: elementwise unions, and binding a callee's dims to a caller's.

use crate::types::DimItem;
use std::collections::HashMap;

/// Why two dim lists do not combine.
#[derive(Debug, PartialEq)]
pub enum AlignError {
    /// Two different packs met.
    TwoPacks(String, String),
    /// Anonymous (literal) dims that do not fit the other operand by position.
    Anonymous(Vec<DimItem>, Vec<DimItem>),
}

fn anon(items: &[DimItem]) -> Vec<u64> {
    items
        .iter()
        .filter_map(|d| {
            if let DimItem::Anon(n) = d {
                Some(*n)
            } else {
                None
            }
        })
        .collect()
}

/// The dims of an elementwise result: `a`'s dims, then `b`'s that `a` lacks.
///
/// Anonymous dims (tensor literals) align by position with the other operand's anonymous dims;
/// a purely anonymous operand adopts the other operand's dims when the ranks agree (and the
/// other's anonymous dims have the same sizes).
pub fn union(a: &[DimItem], b: &[DimItem]) -> Result<Vec<DimItem>, AlignError> {
    if a.is_empty() {
        return Ok(b.to_vec());
    }
    if b.is_empty() || a == b {
        return Ok(a.to_vec());
    }
    let (a_anon, b_anon) = (anon(a), anon(b));
    let all_anon = |v: &[DimItem]| v.iter().all(|d| matches!(d, DimItem::Anon(_)));
    let all_named = |v: &[DimItem]| v.iter().all(|d| matches!(d, DimItem::Named(_)));
    if all_anon(a) && all_named(b) {
        return if a.len() == b.len() {
            Ok(b.to_vec())
        } else {
            Err(AlignError::Anonymous(a.to_vec(), b.to_vec()))
        };
    }
    if all_anon(b) && all_named(a) {
        return if a.len() == b.len() {
            Ok(a.to_vec())
        } else {
            Err(AlignError::Anonymous(a.to_vec(), b.to_vec()))
        };
    }
    // A literal (all anonymous) of the other operand's rank adopts its dims by position when
    // the other's own anonymous dims have the literal's sizes there (`z.u: [2, K]` + a 2×2
    // literal).
    let adopts = |lit: &[DimItem], other: &[DimItem]| {
        all_anon(lit)
            && lit.len() == other.len()
            && lit.iter().zip(other).all(|(l, o)| match o {
                DimItem::Anon(_) => l == o,
                DimItem::Named(_) => true,
                DimItem::Pack(_) => false,
            })
    };
    if adopts(a, b) {
        return Ok(b.to_vec());
    }
    if adopts(b, a) {
        return Ok(a.to_vec());
    }
    if !a_anon.is_empty() && !b_anon.is_empty() && a_anon != b_anon {
        return Err(AlignError::Anonymous(a.to_vec(), b.to_vec()));
    }
    let pack_a = a.iter().find_map(|d| {
        if let DimItem::Pack(p) = d {
            Some(p)
        } else {
            None
        }
    });
    let pack_b = b.iter().find_map(|d| {
        if let DimItem::Pack(p) = d {
            Some(p)
        } else {
            None
        }
    });
    if let (Some(pa), Some(pb)) = (pack_a, pack_b) {
        if pa != pb {
            return Err(AlignError::TwoPacks(pa.clone(), pb.clone()));
        }
    }
    let mut out = a.to_vec();
    for item in b {
        match item {
            DimItem::Anon(_) if !a_anon.is_empty() => {}
            _ if out.contains(item) && !matches!(item, DimItem::Anon(_)) => {}
            _ => out.push(item.clone()),
        }
    }
    Ok(out)
}

/// How a callee's dims and packs map onto the caller's.
#[derive(Debug, Default, Clone)]
pub struct DimBinding {
    /// Callee dim → caller dim.
    pub dims: HashMap<String, DimItem>,
    /// Callee pack → caller dims.
    pub packs: HashMap<String, Vec<DimItem>>,
}

fn compatible(x: &DimItem, y: &DimItem) -> Option<DimItem> {
    match (x, y) {
        _ if x == y => Some(x.clone()),
        (DimItem::Anon(_), DimItem::Named(_)) => Some(y.clone()),
        (DimItem::Named(_), DimItem::Anon(_)) => Some(x.clone()),
        _ => None,
    }
}

impl DimBinding {
    /// Binds a parameter's declared dims to an argument's dims, by position (a pack takes the
    /// middle). Returns a message on failure.
    pub fn bind(&mut self, param: &[DimItem], arg: &[DimItem]) -> Result<(), String> {
        let pack_at = param.iter().position(|d| matches!(d, DimItem::Pack(_)));
        let fixed = param.len() - usize::from(pack_at.is_some());
        let rank_ok = match pack_at {
            Some(_) => arg.len() >= fixed,
            None => arg.len() == param.len(),
        };
        if !rank_ok {
            return Err(format!(
                "expected {} dim{}, found {}",
                if pack_at.is_some() {
                    format!("at least {fixed}")
                } else {
                    fixed.to_string()
                },
                if fixed == 1 { "" } else { "s" },
                arg.len()
            ));
        }
        let (lead, tail) = match pack_at {
            Some(p) => (p, param.len() - p - 1),
            None => (param.len(), 0),
        };
        let mut pairs: Vec<(&DimItem, &DimItem)> = param[..lead].iter().zip(&arg[..lead]).collect();
        pairs.extend(
            param[param.len() - tail..]
                .iter()
                .zip(&arg[arg.len() - tail..]),
        );
        for (p, a) in pairs {
            self.bind_one(p, a)?;
        }
        if let Some(p) = pack_at {
            let DimItem::Pack(name) = &param[p] else {
                unreachable!()
            };
            let middle = arg[lead..arg.len() - tail].to_vec();
            match self.packs.get(name) {
                Some(prev)
                    if prev.len() != middle.len()
                        || prev
                            .iter()
                            .zip(&middle)
                            .any(|(x, y)| compatible(x, y).is_none()) =>
                {
                    return Err(format!(
                        "pack ..{name} is bound to both [{}] and [{}]",
                        list(prev),
                        list(&middle)
                    ));
                }
                Some(_) => {}
                None => {
                    self.packs.insert(name.clone(), middle);
                }
            }
        }
        Ok(())
    }

    fn bind_one(&mut self, param: &DimItem, arg: &DimItem) -> Result<(), String> {
        if let DimItem::Pack(p) = arg {
            return Err(format!(
                "pack ..{p} cannot stand for the single dim {param}"
            ));
        }
        match param {
            DimItem::Named(name) => match self.dims.get(name) {
                None => {
                    self.dims.insert(name.clone(), arg.clone());
                    Ok(())
                }
                Some(prev) => match compatible(prev, arg) {
                    Some(keep) => {
                        self.dims.insert(name.clone(), keep);
                        Ok(())
                    }
                    None => Err(format!("dim {name} is bound to both {prev} and {arg}")),
                },
            },
            DimItem::Anon(n) => match arg {
                DimItem::Anon(m) if m != n => {
                    Err(format!("expected a dim of size {n}, found size {m}"))
                }
                _ => Ok(()),
            },
            DimItem::Pack(_) => unreachable!("packs are handled by `bind`"),
        }
    }

    /// A callee type's dims in the caller's terms; dims no argument bound get `fresh(name)`.
    pub fn map(&self, dims: &[DimItem], fresh: &mut dyn FnMut(&str) -> DimItem) -> Vec<DimItem> {
        let mut out = Vec::new();
        for d in dims {
            match d {
                DimItem::Named(n) => {
                    out.push(self.dims.get(n).cloned().unwrap_or_else(|| fresh(n)))
                }
                DimItem::Pack(p) => match self.packs.get(p) {
                    Some(items) => out.extend(items.iter().cloned()),
                    None => out.push(DimItem::Pack(format!("{p}'"))),
                },
                DimItem::Anon(n) => out.push(DimItem::Anon(*n)),
            }
        }
        out
    }
}

/// Dims as `B, T, ..S`.
pub fn list(dims: &[DimItem]) -> String {
    dims.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> DimItem {
        DimItem::Named(s.into())
    }

    #[test]
    fn union_aligns_by_name_and_broadcasts() {
        assert_eq!(
            union(&[n("B")], &[n("B"), n("T")]).unwrap(),
            vec![n("B"), n("T")]
        );
        assert_eq!(union(&[n("T")], &[n("B")]).unwrap(), vec![n("T"), n("B")]);
        assert_eq!(union(&[DimItem::Anon(2)], &[n("B")]).unwrap(), vec![n("B")]);
        assert!(union(&[DimItem::Anon(2), DimItem::Anon(3)], &[n("B")]).is_err());
        assert!(union(&[DimItem::Pack("S".into())], &[DimItem::Pack("L".into())]).is_err());
        // A literal adopts a mixed operand's dims when its sizes fit the anonymous ones.
        let (a2, a3) = (DimItem::Anon(2), DimItem::Anon(3));
        let mixed = [a2.clone(), n("K")];
        assert_eq!(union(&mixed, &[a2.clone(), a2.clone()]).unwrap(), mixed);
        assert_eq!(union(&[a2.clone(), a3.clone()], &mixed).unwrap(), mixed);
        assert!(union(&mixed, &[a3.clone(), a2.clone()]).is_err());
    }

    #[test]
    fn binding_is_positional_with_a_pack_in_the_middle() {
        let mut b = DimBinding::default();
        let param = [DimItem::Pack("L".into()), n("I")];
        b.bind(&param, &[n("B"), n("T"), n("H")]).unwrap();
        assert_eq!(b.packs["L"], vec![n("B"), n("T")]);
        assert_eq!(b.dims["I"], n("H"));
        assert!(
            b.bind(&[n("O"), n("I")], &[n("V"), n("T")]).is_err(),
            "I bound to both H and T"
        );
    }
}
