//! Columnar accumulators: one vector per aggregation, indexed by group id, updated in tight
//! loops and merged once across workers.

use super::buckets::SKIP;
use super::columns::DimCodes;
use super::hll::Hll;
use super::plan::AggFunc;
use rustc_hash::FxHashSet;

/// The state of one aggregation for every group.
#[derive(Debug, Clone)]
pub enum Acc {
    Count(Vec<i64>),
    SumI(Vec<i64>),
    SumF(Vec<f64>),
    MinI(Vec<Option<i64>>),
    MaxI(Vec<Option<i64>>),
    MinF(Vec<Option<f64>>),
    MaxF(Vec<Option<f64>>),
    /// Exact distinct values: codes of a per-worker interner per group.
    Distinct(DimCodes, Vec<FxHashSet<u32>>),
    Hll(Vec<Hll>),
}

/// One batch's input to an aggregation.
pub enum Input<'a> {
    /// Count every selected row.
    Rows,
    /// Count non-null values.
    Valid(Option<&'a [bool]>),
    I64(&'a [i64], Option<&'a [bool]>),
    F64(&'a [f64], Option<&'a [bool]>),
    /// Interned values, `SKIP` for null.
    Codes(&'a [u32]),
    /// Value hashes, `None` entries for null.
    Hashes(&'a [u64], Option<&'a [bool]>),
}

impl Acc {
    pub fn new(func: AggFunc, integer_input: bool) -> Acc {
        match (func, integer_input) {
            (AggFunc::Count, _) => Acc::Count(vec![]),
            (AggFunc::LongSum, _) => Acc::SumI(vec![]),
            (AggFunc::DoubleSum, _) => Acc::SumF(vec![]),
            (AggFunc::Min, true) => Acc::MinI(vec![]),
            (AggFunc::Max, true) => Acc::MaxI(vec![]),
            (AggFunc::Min, false) => Acc::MinF(vec![]),
            (AggFunc::Max, false) => Acc::MaxF(vec![]),
            (AggFunc::CountDistinct, _) => Acc::Distinct(DimCodes::default(), vec![]),
            (AggFunc::ApproxCountDistinct, _) => Acc::Hll(vec![]),
        }
    }

    /// An empty state of the same kind.
    pub fn empty_like(&self) -> Acc {
        match self {
            Acc::Count(_) => Acc::Count(vec![]),
            Acc::SumI(_) => Acc::SumI(vec![]),
            Acc::SumF(_) => Acc::SumF(vec![]),
            Acc::MinI(_) => Acc::MinI(vec![]),
            Acc::MaxI(_) => Acc::MaxI(vec![]),
            Acc::MinF(_) => Acc::MinF(vec![]),
            Acc::MaxF(_) => Acc::MaxF(vec![]),
            Acc::Distinct(c, _) => Acc::Distinct(c.clone(), vec![]),
            Acc::Hll(_) => Acc::Hll(vec![]),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Acc::Count(v) | Acc::SumI(v) => v.len(),
            Acc::SumF(v) => v.len(),
            Acc::MinI(v) | Acc::MaxI(v) => v.len(),
            Acc::MinF(v) | Acc::MaxF(v) => v.len(),
            Acc::Distinct(_, v) => v.len(),
            Acc::Hll(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grows to `n` groups.
    pub fn resize(&mut self, n: usize) {
        match self {
            Acc::Count(v) | Acc::SumI(v) => v.resize(n, 0),
            Acc::SumF(v) => v.resize(n, 0.0),
            Acc::MinI(v) | Acc::MaxI(v) => v.resize(n, None),
            Acc::MinF(v) | Acc::MaxF(v) => v.resize(n, None),
            Acc::Distinct(_, v) => v.resize_with(n, Default::default),
            Acc::Hll(v) => v.resize_with(n, Default::default),
        }
    }

    /// Folds one batch in: row `i` goes to group `gids[i]` unless that is `SKIP` or
    /// `mask[i]` is false.
    pub fn update(&mut self, gids: &[u32], mask: Option<&[bool]>, input: &Input) {
        let keep = |i: usize| gids[i] != SKIP && mask.is_none_or(|m| m[i]);
        let valid = |v: Option<&[bool]>, i: usize| v.is_none_or(|v| v[i]);
        // Tight loops for the common cases: no fixed filter, no nulls.
        match (&mut *self, input, mask) {
            (Acc::Count(c), Input::Rows, None) | (Acc::Count(c), Input::Valid(None), None) => {
                count_lanes(c, gids);
                return;
            }
            (Acc::SumF(s), Input::F64(x, None), None) => {
                sum_lanes(s, gids, x, |a, b| a + b);
                return;
            }
            (Acc::SumI(s), Input::I64(x, None), None) => {
                sum_lanes(s, gids, x, i64::wrapping_add);
                return;
            }
            _ => {}
        }
        match (self, input) {
            (Acc::Count(c), Input::Rows) => {
                for (i, &g) in gids.iter().enumerate() {
                    if g != SKIP && mask.is_none_or(|m| m[i]) {
                        c[g as usize] += 1;
                    }
                }
            }
            (Acc::Count(c), Input::Valid(v)) => {
                for (i, &g) in gids.iter().enumerate() {
                    if keep(i) && valid(*v, i) {
                        c[g as usize] += 1;
                    }
                }
            }
            (Acc::SumI(s), Input::I64(x, v)) => {
                for (i, &g) in gids.iter().enumerate() {
                    if keep(i) && valid(*v, i) {
                        s[g as usize] = s[g as usize].wrapping_add(x[i]);
                    }
                }
            }
            (Acc::SumF(s), Input::F64(x, v)) => {
                for (i, &g) in gids.iter().enumerate() {
                    if keep(i) && valid(*v, i) {
                        s[g as usize] += x[i];
                    }
                }
            }
            (Acc::MinI(s), Input::I64(x, v)) => fold_opt(s, gids, &keep, *v, x, |a, b| a.min(b)),
            (Acc::MaxI(s), Input::I64(x, v)) => fold_opt(s, gids, &keep, *v, x, |a, b| a.max(b)),
            (Acc::MinF(s), Input::F64(x, v)) => fold_opt(s, gids, &keep, *v, x, f64::min),
            (Acc::MaxF(s), Input::F64(x, v)) => fold_opt(s, gids, &keep, *v, x, f64::max),
            (Acc::Distinct(_, sets), Input::Codes(codes)) => {
                for (i, &g) in gids.iter().enumerate() {
                    if keep(i) && codes[i] != SKIP {
                        sets[g as usize].insert(codes[i]);
                    }
                }
            }
            (Acc::Hll(h), Input::Hashes(x, v)) => {
                for (i, &g) in gids.iter().enumerate() {
                    if keep(i) && valid(*v, i) {
                        h[g as usize].insert(x[i]);
                    }
                }
            }
            _ => debug_assert!(false, "accumulator and input kinds disagree"),
        }
    }

    /// [`Acc::update`], also marking in `seen` every group a row reached (`seen` holds at
    /// least one slot per group, and a sink past them). Sums without nulls over many groups
    /// mark inside their own loop; everything else takes a second pass.
    pub fn update_and_mark(&mut self, gids: &[u32], mask: Option<&[bool]>, input: &Input, seen: &mut [bool]) {
        match (&mut *self, input, mask) {
            (Acc::SumF(s), Input::F64(x, None), None) if s.len() > LANE_GROUPS => {
                sum_marking(s, gids, x, seen, |a, b| a + b)
            }
            (Acc::SumI(s), Input::I64(x, None), None) if s.len() > LANE_GROUPS => {
                sum_marking(s, gids, x, seen, i64::wrapping_add)
            }
            _ => {
                self.update(gids, mask, input);
                mark_seen(seen, gids);
            }
        }
    }

    /// Merges group `from` of `other` into group `to` of `self` (same kind).
    /// `distinct_map` translates `other`'s distinct codes into `self`'s.
    pub fn merge_group(&mut self, to: usize, other: &Acc, from: usize, distinct_map: &[u32]) {
        self.merge_groups(other, &[(from, to as u32)], distinct_map);
    }

    /// Merges group `from` of `other` into group `to` of `self` (same kind) for every
    /// `(from, to)` pair, the kinds matched once for the whole list. `distinct_map` translates
    /// `other`'s distinct codes into `self`'s.
    pub fn merge_groups(&mut self, other: &Acc, pairs: &[(usize, u32)], distinct_map: &[u32]) {
        fn each<T: Copy>(a: &mut [T], b: &[T], pairs: &[(usize, u32)], f: impl Fn(T, T) -> T) {
            for &(from, to) in pairs {
                a[to as usize] = f(a[to as usize], b[from]);
            }
        }
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) | (Acc::SumI(a), Acc::SumI(b)) => each(a, b, pairs, i64::wrapping_add),
            (Acc::SumF(a), Acc::SumF(b)) => each(a, b, pairs, |x, y| x + y),
            (Acc::MinI(a), Acc::MinI(b)) => each(a, b, pairs, |x, y| opt2(x, y, i64::min)),
            (Acc::MaxI(a), Acc::MaxI(b)) => each(a, b, pairs, |x, y| opt2(x, y, i64::max)),
            (Acc::MinF(a), Acc::MinF(b)) => each(a, b, pairs, |x, y| opt2(x, y, f64::min)),
            (Acc::MaxF(a), Acc::MaxF(b)) => each(a, b, pairs, |x, y| opt2(x, y, f64::max)),
            (Acc::Distinct(_, a), Acc::Distinct(_, b)) => {
                for &(from, to) in pairs {
                    let dst = &mut a[to as usize];
                    for c in &b[from] {
                        dst.insert(distinct_map.get(*c as usize).copied().unwrap_or(*c));
                    }
                }
            }
            (Acc::Hll(a), Acc::Hll(b)) => pairs.iter().for_each(|&(from, to)| a[to as usize].merge(&b[from])),
            _ => debug_assert!(false, "merging different accumulator kinds"),
        }
    }

    /// The distinct-value interner, for building `distinct_map`s.
    pub fn distinct_codes(&mut self) -> Option<&mut DimCodes> {
        match self {
            Acc::Distinct(c, _) => Some(c),
            _ => None,
        }
    }

    /// Final value of a group: integer or float, `None` when there was no value (min/max).
    pub fn value(&self, g: usize) -> Value {
        match self {
            Acc::Count(v) | Acc::SumI(v) => Value::Int(Some(v[g])),
            Acc::SumF(v) => Value::Float(Some(v[g])),
            Acc::MinI(v) | Acc::MaxI(v) => Value::Int(v[g]),
            Acc::MinF(v) | Acc::MaxF(v) => Value::Float(v[g]),
            Acc::Distinct(_, v) => Value::Int(Some(v[g].len() as i64)),
            Acc::Hll(v) => Value::Int(Some(v[g].estimate())),
        }
    }

    /// Approximate bytes of state.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Acc::Count(v) | Acc::SumI(v) => v.len() * 8,
            Acc::SumF(v) => v.len() * 8,
            Acc::MinI(v) | Acc::MaxI(v) => v.len() * 16,
            Acc::MinF(v) | Acc::MaxF(v) => v.len() * 16,
            Acc::Distinct(codes, sets) => {
                codes.approx_bytes() + sets.iter().map(|s| 48 + s.capacity() * 5).sum::<usize>()
            }
            Acc::Hll(v) => v.iter().map(|h| h.approx_bytes()).sum(),
        }
    }

    /// A sum of doubles over few enough groups to be folded with others in one pass
    /// ([`sum_fused`]).
    pub fn fusable(&self) -> bool {
        matches!(self, Acc::SumF(s) if s.len() <= LANE_GROUPS)
    }

    /// The sums of a sum of doubles.
    pub fn sums_mut(&mut self) -> Option<&mut Vec<f64>> {
        match self {
            Acc::SumF(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, Acc::Count(_) | Acc::SumI(_) | Acc::MinI(_) | Acc::MaxI(_) | Acc::Distinct(..) | Acc::Hll(_))
    }
}

/// A metric value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Float(Option<f64>),
}

impl Value {
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Value::Int(v) => v.map(|x| x as f64),
            Value::Float(v) => v,
        }
    }
}

/// Groups small enough to be summed in interleaved lanes.
const LANE_GROUPS: usize = 64;

/// Interleaved lanes: a row's add waits for the add of the same lane and group `LANES` rows
/// earlier (a load, an add and a store: about 9 cycles), so eight lanes keep the loop bound by
/// throughput (with four, Q1 spent 16% of its time there).
const LANES: usize = 8;

/// `s[gids[i]] += values[i]` for every row not `SKIP`. With few groups, consecutive rows hit
/// the same slot and each add waits for the previous one; interleaved lanes break that
/// dependency chain and are folded together at the end, and skipped rows (at random under a
/// filter) go to a sink slot past the groups instead of a branch per row.
#[inline]
fn sum_lanes<T: Copy + Default>(s: &mut [T], gids: &[u32], values: &[T], add: impl Fn(T, T) -> T) {
    match s.len() {
        0..16 => sum_in_lanes::<T, 16>(s, gids, values, add),
        16..=LANE_GROUPS => sum_in_lanes::<T, { LANE_GROUPS + 1 }>(s, gids, values, add),
        _ => {
            for (&g, &v) in gids.iter().zip(values) {
                if g != SKIP {
                    s[g as usize] = add(s[g as usize], v);
                }
            }
        }
    }
}

/// [`sum_lanes`] with `W - 1` group slots and the sink per lane (a smaller `W` for fewer
/// groups: the lanes are zeroed per batch).
#[inline]
fn sum_in_lanes<T: Copy + Default, const W: usize>(s: &mut [T], gids: &[u32], values: &[T], add: impl Fn(T, T) -> T) {
    let mut lanes = [[T::default(); W]; LANES];
    let (gc, vc) = (gids.chunks_exact(LANES), values.chunks_exact(LANES));
    let (gr, vr) = (gc.remainder(), vc.remainder());
    for (g, v) in gc.zip(vc) {
        for k in 0..LANES {
            let slot = &mut lanes[k][(g[k] as usize).min(W - 1)];
            *slot = add(*slot, v[k]);
        }
    }
    for (&g, &v) in gr.iter().zip(vr) {
        let slot = &mut lanes[0][(g as usize).min(W - 1)];
        *slot = add(*slot, v);
    }
    for (g, slot) in s.iter_mut().enumerate() {
        *slot = lanes.iter().fold(*slot, |a, lane| add(a, lane[g]));
    }
}

/// `sums[k][gids[i]] += xs[k][i]` for every input `k` and every row not `SKIP`, in one pass:
/// each row's lane slot is computed once for all the sums (Q1 sums five columns over the same
/// groups). Every sum has the same few groups (at most [`LANE_GROUPS`]).
pub fn sum_fused(sums: &mut [&mut Vec<f64>], gids: &[u32], xs: &[&[f64]]) {
    match sums.first().map_or(0, |s| s.len()) {
        0 => {}
        1..16 => sum_fused_in::<16>(sums, gids, xs),
        _ => sum_fused_in::<{ LANE_GROUPS + 1 }>(sums, gids, xs),
    }
}

/// [`sum_fused`] with `W - 1` group slots and the sink per lane.
fn sum_fused_in<const W: usize>(sums: &mut [&mut Vec<f64>], gids: &[u32], xs: &[&[f64]]) {
    let mut lanes = vec![[[0f64; W]; LANES]; xs.len()];
    let chunks = gids.len() / LANES;
    match uniform(gids) {
        // Every row in one group (data sorted by time often is: Q1's later years are all one
        // flag pair): the lanes add in registers, in the same order as the loop below.
        Some(g) => {
            let slot = (g as usize).min(W - 1);
            for (lane, x) in lanes.iter_mut().zip(xs) {
                let mut acc = [0f64; LANES];
                for v in x[..chunks * LANES].chunks_exact(LANES) {
                    for k in 0..LANES {
                        acc[k] += v[k];
                    }
                }
                for k in 0..LANES {
                    lane[k][slot] += acc[k];
                }
            }
        }
        None => {
            for c in 0..chunks {
                let at = c * LANES;
                let slots: [usize; LANES] = std::array::from_fn(|k| (gids[at + k] as usize).min(W - 1));
                for (lane, x) in lanes.iter_mut().zip(xs) {
                    let v = &x[at..at + LANES];
                    for k in 0..LANES {
                        lane[k][slots[k]] += v[k];
                    }
                }
            }
        }
    }
    for (i, &g) in gids.iter().enumerate().skip(chunks * LANES) {
        let slot = (g as usize).min(W - 1);
        for (lane, x) in lanes.iter_mut().zip(xs) {
            lane[0][slot] += x[i];
        }
    }
    for (s, lane) in sums.iter_mut().zip(&lanes) {
        for (g, slot) in s.iter_mut().enumerate() {
            *slot = lane.iter().fold(*slot, |a, l| a + l[g]);
        }
    }
}

/// The group every row of a batch falls in, when it is one.
fn uniform(gids: &[u32]) -> Option<u32> {
    let g = *gids.first()?;
    gids.iter().all(|&x| x == g).then_some(g)
}

/// `s[g] += v` and `seen[g] = true` for every row's group `g` not `SKIP`, in one loop: the
/// mark costs a store where a pass of its own would reload every group id.
#[inline]
fn sum_marking<T: Copy>(s: &mut [T], gids: &[u32], values: &[T], seen: &mut [bool], add: impl Fn(T, T) -> T) {
    for (&g, &v) in gids.iter().zip(values) {
        if g != SKIP {
            s[g as usize] = add(s[g as usize], v);
            seen[g as usize] = true;
        }
    }
}

/// Marks in `seen` the group of every row not `SKIP`; skipped rows go to the sink, the last
/// slot (branch-free: skipped rows fall at random under a filter).
pub fn mark_seen(seen: &mut [bool], gids: &[u32]) {
    let Some(sink) = seen.len().checked_sub(1) else { return };
    for &g in gids {
        seen[std::hint::select_unpredictable(g == SKIP, sink, (g as usize).min(sink))] = true;
    }
}

/// Counts rows per group (not `SKIP`), with the same lanes and sink.
#[inline]
fn count_lanes(c: &mut [i64], gids: &[u32]) {
    match c.len() {
        0..16 => count_in_lanes::<16>(c, gids),
        16..=LANE_GROUPS => count_in_lanes::<{ LANE_GROUPS + 1 }>(c, gids),
        _ => {
            for &g in gids {
                if g != SKIP {
                    c[g as usize] += 1;
                }
            }
        }
    }
}

/// [`count_lanes`] with `W - 1` group slots and the sink per lane.
#[inline]
fn count_in_lanes<const W: usize>(c: &mut [i64], gids: &[u32]) {
    let mut lanes = [[0u32; W]; LANES];
    let gc = gids.chunks_exact(LANES);
    let rest = gc.remainder();
    for g in gc {
        for k in 0..LANES {
            lanes[k][(g[k] as usize).min(W - 1)] += 1;
        }
    }
    for &g in rest {
        lanes[0][(g as usize).min(W - 1)] += 1;
    }
    for (g, slot) in c.iter_mut().enumerate() {
        *slot += lanes.iter().map(|lane| lane[g] as i64).sum::<i64>();
    }
}

fn opt2<T: Copy>(a: Option<T>, b: Option<T>, f: impl Fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn fold_opt<T: Copy>(
    s: &mut [Option<T>],
    gids: &[u32],
    keep: &dyn Fn(usize) -> bool,
    valid: Option<&[bool]>,
    x: &[T],
    f: impl Fn(T, T) -> T,
) {
    for (i, &g) in gids.iter().enumerate() {
        if keep(i) && valid.is_none_or(|v| v[i]) {
            let slot = &mut s[g as usize];
            *slot = Some(match *slot {
                Some(cur) => f(cur, x[i]),
                None => x[i],
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_and_merge() {
        let gids = [0, 1, SKIP, 0];
        let mut a = Acc::new(AggFunc::LongSum, true);
        a.resize(2);
        a.update(&gids, None, &Input::I64(&[1, 2, 100, 3], Some(&[true, true, true, false])));
        assert_eq!(a.value(0), Value::Int(Some(1)));
        assert_eq!(a.value(1), Value::Int(Some(2)));
        let mut m = Acc::new(AggFunc::Min, false);
        m.resize(2);
        m.update(&gids, Some(&[true, false, true, true]), &Input::F64(&[5.0, 1.0, 0.0, 2.0], None));
        assert_eq!(m.value(0), Value::Float(Some(2.0)));
        assert_eq!(m.value(1), Value::Float(None));
        let mut f = [vec![0.0; 2], vec![0.0; 2]];
        let mut refs: Vec<&mut Vec<f64>> = f.iter_mut().collect();
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let g: Vec<u32> = (0..20).map(|i| if i % 5 == 4 { SKIP } else { i % 2 }).collect();
        sum_fused(&mut refs, &g, &[&x, &x]);
        let want = |k: u32| x.iter().zip(&g).filter(|(_, gi)| **gi == k).map(|(v, _)| v).sum::<f64>();
        assert_eq!(f[0], vec![want(0), want(1)]);
        assert_eq!(f[1], f[0]);
        // A batch all in one group (with a tail past the lanes), and one all skipped.
        for (uniform, want) in [(1, x.iter().sum::<f64>()), (SKIP, 0.0)] {
            let mut f = [vec![0.5; 2]];
            let mut refs: Vec<&mut Vec<f64>> = f.iter_mut().collect();
            sum_fused(&mut refs, &[uniform; 20], &[&x]);
            assert_eq!(f[0], vec![0.5, 0.5 + want], "all rows in group {uniform}");
        }
        let mut b = m.empty_like();
        b.resize(1);
        b.merge_group(0, &m, 0, &[]);
        assert_eq!(b.value(0), Value::Float(Some(2.0)));
    }
}
