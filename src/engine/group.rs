//! Group-by on codes: each row's (base time bucket, dimension codes) becomes a dense group
//! id through a hash table keyed on packed integers; accumulators are indexed by that id.
//! A [`Partial`] is one worker's state; partials merge by dimension *values*, once.

use super::EngineError;
use super::accum::Acc;
use super::buckets::{Buckets, SKIP};
use super::columns::{self, DimCodes};
use super::plan::QueryPlan;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use rustc_hash::FxHashMap;

/// Maps (bucket, codes…) to dense group ids: through a direct-index table while the key
/// space (buckets × dimension cardinalities) is small, else through a hash table.
#[derive(Debug, Default, Clone)]
pub struct GroupTable {
    width: usize,
    small: FxHashMap<u128, u32>,
    large: FxHashMap<Box<[u32]>, u32>,
    dense: Option<Dense>,
    /// Base bucket of each group.
    pub buckets: Vec<u32>,
    /// `width` dimension codes per group, flattened.
    pub codes: Vec<u32>,
}

/// Direct-index table: slot = ((bucket · cap₀ + code₀) · cap₁ + code₁)…; capacities are
/// powers of two that grow (and the table is rebuilt) as dictionaries grow.
#[derive(Debug, Clone)]
struct Dense {
    shifts: Vec<u32>,
    buckets: usize,
    table: Vec<u32>,
}

/// Largest direct-index table (entries) before falling back to hashing.
const DENSE_MAX: usize = 1 << 22;

impl Dense {
    fn size(buckets: usize, shifts: &[u32]) -> usize {
        shifts.iter().fold(buckets.max(1), |acc, s| acc.saturating_mul(1usize << s))
    }

    #[inline]
    fn slot(&self, bucket: u32, codes: &[u32]) -> Option<usize> {
        let mut idx = bucket as usize;
        for (c, s) in codes.iter().zip(&self.shifts) {
            if (*c as usize) >> s != 0 {
                return None;
            }
            idx = (idx << s) | *c as usize;
        }
        Some(idx)
    }
}

impl GroupTable {
    /// A table for `width` dimensions; `buckets` > 0 enables the direct-index path.
    pub fn new(width: usize) -> Self {
        GroupTable { width, ..Default::default() }
    }

    pub fn with_buckets(width: usize, buckets: usize) -> Self {
        let shifts = vec![4u32; width];
        let dense = (buckets > 0 && Dense::size(buckets, &shifts) <= DENSE_MAX).then(|| Dense {
            table: vec![SKIP; Dense::size(buckets, &shifts)],
            shifts,
            buckets,
        });
        GroupTable { width, dense, ..Default::default() }
    }

    /// Grows the direct-index table to fit `codes`, or abandons it for hashing.
    fn grow_dense(&mut self, codes: &[u32]) {
        let Some(d) = self.dense.take() else { return };
        let mut shifts = d.shifts.clone();
        for (s, c) in shifts.iter_mut().zip(codes) {
            while (*c as usize) >> *s != 0 {
                *s += 1;
            }
        }
        let size = Dense::size(d.buckets, &shifts);
        if size <= DENSE_MAX {
            let mut nd = Dense { table: vec![SKIP; size], shifts, buckets: d.buckets };
            for g in 0..self.buckets.len() {
                if let Some(slot) = nd.slot(self.buckets[g], &self.codes[g * self.width..(g + 1) * self.width]) {
                    nd.table[slot] = g as u32;
                }
            }
            self.dense = Some(nd);
        } else {
            // Too large: move every group into the hash tables.
            for g in 0..self.buckets.len() {
                let (b, c) = (self.buckets[g], self.codes[g * self.width..(g + 1) * self.width].to_vec());
                self.hash_insert(b, &c, g as u32);
            }
        }
    }

    fn hash_insert(&mut self, bucket: u32, codes: &[u32], g: u32) {
        if self.width <= 3 {
            self.small.insert(pack(bucket, codes), g);
        } else {
            let mut key = Vec::with_capacity(codes.len() + 1);
            key.push(bucket);
            key.extend_from_slice(codes);
            self.large.insert(key.into_boxed_slice(), g);
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Bytes of the lookup structures (direct-index table or hash maps).
    pub fn table_bytes(&self) -> usize {
        self.dense.as_ref().map(|d| d.table.len() * 4).unwrap_or(0)
            + self.small.len() * 24
            + self.large.len() * (48 + 4 * self.width)
    }

    pub fn codes_of(&self, g: usize) -> &[u32] {
        &self.codes[g * self.width..(g + 1) * self.width]
    }

    /// Replaces every bucket in `gids` (not `SKIP`) by the id of its (bucket, codes) group,
    /// reading the codes column by column. On the direct-index path the slots are computed
    /// with column-wise shifts (tight, vectorizable loops) before one table lookup per row.
    pub fn assign(&mut self, gids: &mut [u32], dims: &[Vec<u32>]) {
        if let Some(d) = &self.dense {
            let maxes: Vec<u32> = dims.iter().map(|c| c.iter().copied().max().unwrap_or(0)).collect();
            if d.slot(0, &maxes).is_none() {
                self.grow_dense(&maxes);
            }
        }
        if let Some(d) = &mut self.dense {
            let mut slots: Vec<usize> = gids.iter().map(|&b| b as usize).collect();
            for (codes, s) in dims.iter().zip(&d.shifts) {
                for (slot, c) in slots.iter_mut().zip(codes) {
                    *slot = (*slot << s) | *c as usize;
                }
            }
            // Every slot fits (the table grew for this batch's largest codes above).
            let table = &mut d.table;
            for (i, (g, &slot)) in gids.iter_mut().zip(&slots).enumerate() {
                if *g == SKIP {
                    continue;
                }
                let found = table[slot];
                if found != SKIP {
                    *g = found;
                    continue;
                }
                let id = self.buckets.len() as u32;
                table[slot] = id;
                self.buckets.push(*g);
                for c in dims {
                    self.codes.push(c[i]);
                }
                *g = id;
            }
            return;
        }
        let mut key = vec![0u32; dims.len()];
        for (i, g) in gids.iter_mut().enumerate() {
            if *g == SKIP {
                continue;
            }
            for (k, c) in key.iter_mut().zip(dims) {
                *k = c[i];
            }
            *g = self.id(*g, &key);
        }
    }

    /// The id of (bucket, codes), inserting a new group when unseen.
    #[inline]
    pub fn id(&mut self, bucket: u32, codes: &[u32]) -> u32 {
        let next = self.buckets.len() as u32;
        if let Some(d) = &mut self.dense {
            if let Some(slot) = d.slot(bucket, codes) {
                let g = d.table[slot];
                if g != SKIP {
                    return g;
                }
                d.table[slot] = next;
                self.buckets.push(bucket);
                self.codes.extend_from_slice(codes);
                return next;
            }
            self.grow_dense(codes);
            return self.id(bucket, codes);
        }
        let id = if self.width <= 3 {
            *self.small.entry(pack(bucket, codes)).or_insert(next)
        } else {
            let mut key = Vec::with_capacity(codes.len() + 1);
            key.push(bucket);
            key.extend_from_slice(codes);
            match self.large.get(key.as_slice()) {
                Some(&g) => g,
                None => {
                    self.large.insert(key.into_boxed_slice(), next);
                    next
                }
            }
        };
        if id == next {
            self.buckets.push(bucket);
            self.codes.extend_from_slice(codes);
        }
        id
    }
}

#[inline]
fn pack(bucket: u32, codes: &[u32]) -> u128 {
    let mut k = bucket as u128;
    for c in codes {
        k = (k << 32) | *c as u128;
    }
    k
}

/// One worker's aggregation state.
#[derive(Debug, Clone)]
pub struct Partial {
    pub groups: GroupTable,
    pub dims: Vec<DimCodes>,
    pub accs: Vec<Acc>,
    batches: usize,
    checked_groups: usize,
    /// Value-indexed group ids for one bucket (see `assign_direct_int`).
    direct: (u32, Vec<u32>),
}

/// Largest integer key the value-indexed table covers (4 MiB of u32 slots).
const DIRECT_INT_MAX: i64 = 1 << 20;

/// Per-query facts every worker needs.
pub struct BatchContext<'a> {
    pub plan: &'a QueryPlan,
    pub buckets: &'a Buckets,
    /// Whether each aggregation's input column is integer (min/max typing).
    pub integer_inputs: Vec<bool>,
    pub max_groups: usize,
    pub max_bytes: usize,
}

impl Partial {
    pub fn new(ctx: &BatchContext) -> Partial {
        Partial {
            groups: GroupTable::with_buckets(ctx.plan.group_by.len(), ctx.buckets.len()),
            dims: vec![DimCodes::default(); ctx.plan.group_by.len()],
            accs: ctx
                .plan
                .aggregations
                .iter()
                .zip(&ctx.integer_inputs)
                .map(|(a, int)| Acc::new(a.func, *int))
                .collect(),
            batches: 0,
            checked_groups: 0,
            direct: (SKIP, Vec::new()),
        }
    }

    /// One integer key and one time bucket (e.g. `all` grain grouped by an id column): map
    /// each value straight to its group id through a value-indexed table — one random load
    /// per row instead of a code lookup and a slot lookup. `false` when the batch does not
    /// qualify (nulls, negative or large values, another type); `gids` is then untouched.
    fn assign_direct_int(&mut self, bucket: u32, arr: &ArrayRef, gids: &mut [u32]) -> bool {
        let Ok(v) = arrow::compute::cast(arr, &DataType::Int64) else { return false };
        if !arr.data_type().is_integer() || v.null_count() != 0 {
            return false;
        }
        let vals = v.as_primitive::<Int64Type>().values();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &x in vals.iter() {
            lo = lo.min(x);
            hi = hi.max(x);
        }
        if vals.is_empty() || lo < 0 || hi >= DIRECT_INT_MAX {
            return false;
        }
        for (g, &x) in gids.iter_mut().zip(vals.iter()) {
            if *g == SKIP {
                continue;
            }
            *g = match self.known_gid_for_int(bucket, x) {
                SKIP => self.gid_for_int(bucket, x),
                known => known,
            };
        }
        true
    }

    /// The group of integer value `v` of the only dimension in `bucket`: through the
    /// value-indexed table (which persists across row groups) for small non-negative values.
    pub fn gid_for_int(&mut self, bucket: u32, v: i64) -> u32 {
        let known = self.known_gid_for_int(bucket, v);
        if known != SKIP {
            return known;
        }
        if !(0..DIRECT_INT_MAX).contains(&v) {
            let code = self.dims[0].code_int(v);
            return self.groups.id(bucket, &[code]);
        }
        if self.direct.0 != bucket {
            self.direct = (bucket, Vec::new());
        }
        let i = v as usize;
        if self.direct.1.len() <= i {
            self.direct.1.resize((i + 1).next_power_of_two(), SKIP);
        }
        let code = self.dims[0].code_int(v);
        self.direct.1[i] = self.groups.id(bucket, &[code]);
        self.direct.1[i]
    }

    /// The group [`Partial::gid_for_int`] would give `v` in `bucket` when it already exists,
    /// else `SKIP`: a lookup that never creates a group.
    #[inline]
    pub fn known_gid_for_int(&self, bucket: u32, v: i64) -> u32 {
        if self.direct.0 != bucket || !(0..DIRECT_INT_MAX).contains(&v) {
            return SKIP;
        }
        self.direct.1.get(v as usize).copied().unwrap_or(SKIP)
    }

    /// An empty partial (no rows were read).
    pub fn empty(width: usize) -> Partial {
        Partial {
            groups: GroupTable::new(width),
            dims: vec![DimCodes::default(); width],
            accs: vec![],
            batches: 0,
            checked_groups: 0,
            direct: (SKIP, Vec::new()),
        }
    }

    /// Approximate bytes held: group keys, the direct-index table, dictionaries,
    /// accumulators and distinct-value sets.
    pub fn approx_bytes(&self) -> usize {
        let g = self.groups.len();
        let keys = g * 4 * (1 + self.groups.width()) + self.groups.table_bytes();
        let dims: usize = self.dims.iter().map(|d| d.approx_bytes()).sum();
        keys + dims + self.direct.1.len() * 4 + self.accs.iter().map(|a| a.approx_bytes()).sum::<usize>()
    }

    /// Aggregates one record batch. `constant_bucket` is the base bucket of every row when
    /// the row group lies inside one bucket (the time column is then not even read).
    pub fn process(
        &mut self,
        batch: &RecordBatch,
        ctx: &BatchContext,
        constant_bucket: Option<u32>,
    ) -> Result<(), EngineError> {
        let plan = ctx.plan;
        let n = batch.num_rows();
        let col = |name: &str| -> Result<ArrayRef, EngineError> {
            batch.column_by_name(name).cloned().ok_or_else(|| EngineError::MissingColumn(name.to_string()))
        };
        // 1. Time bucket per row.
        let mut gids: Vec<u32> = match constant_bucket {
            Some(b) => vec![b; n],
            None => {
                let times = columns::time_ms(&plan.time_column, &col(&plan.time_column)?)?;
                let mut cursor = 0usize;
                times.iter().map(|&t| ctx.buckets.locate(t, &mut cursor)).collect()
            }
        };
        // 2. Row filters.
        if !plan.filters.is_empty() {
            let mut mask = vec![true; n];
            for f in &plan.filters {
                columns::apply_predicate(&f.column, &f.op, &col(&f.column)?, &mut mask)?;
            }
            for (g, m) in gids.iter_mut().zip(mask) {
                if !m {
                    *g = SKIP;
                }
            }
        }
        // 3. Dimension codes, 4. group ids.
        let direct = match (constant_bucket, plan.group_by.as_slice()) {
            (Some(b), [gb]) => self.assign_direct_int(b, &col(&gb.column)?, &mut gids),
            _ => false,
        };
        if !direct {
            let mut dim_codes: Vec<Vec<u32>> = Vec::with_capacity(plan.group_by.len());
            for (j, gb) in plan.group_by.iter().enumerate() {
                let mut out = Vec::with_capacity(n);
                columns::dimension_codes(&gb.column, &col(&gb.column)?, &mut self.dims[j], &mut out)?;
                dim_codes.push(out);
            }
            self.groups.assign(&mut gids, &dim_codes);
        }
        self.aggregate(&gids, &col, n, ctx)
    }

    /// Folds one batch whose rows already carry group ids (`SKIP` = not aggregated) into
    /// the accumulators, after checking the group and memory caps. `col` reads the
    /// batch's input columns.
    pub fn aggregate(
        &mut self,
        gids: &[u32],
        col: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
        n: usize,
        ctx: &BatchContext,
    ) -> Result<(), EngineError> {
        self.check_caps(ctx)?;
        super::fold::fold_batch(&mut self.accs, self.groups.len(), gids, col, n, ctx.plan, None)
    }

    /// Checks the group cap, and the memory cap every 32 calls or sooner when the groups
    /// grew by an eighth.
    pub fn check_caps(&mut self, ctx: &BatchContext) -> Result<(), EngineError> {
        if self.groups.len() > ctx.max_groups {
            return Err(EngineError::TooManyGroups(ctx.max_groups));
        }
        self.batches += 1;
        if self.batches.is_multiple_of(32) || self.groups.len() > self.checked_groups + self.checked_groups / 8 + 1024 {
            self.checked_groups = self.groups.len();
            let bytes = self.approx_bytes();
            if bytes > ctx.max_bytes {
                return Err(EngineError::TooManyBytes(ctx.max_bytes));
            }
        }
        Ok(())
    }

    /// Adds slot `from` of `local` (accumulators of the same kinds, without distinct values)
    /// to group `to`, for every `(from, to)` pair.
    pub fn absorb(&mut self, local: &[Acc], pairs: &[(usize, u32)]) {
        let n = self.groups.len();
        for (a, l) in self.accs.iter_mut().zip(local) {
            if a.len() < n {
                a.resize(n);
            }
            a.merge_groups(l, pairs, &[]);
        }
    }
}

/// Merges worker partials into one, matching dimension codes by value.
pub fn merge(mut parts: Vec<Partial>, max_groups: usize) -> Result<Option<Partial>, EngineError> {
    if parts.len() <= 1 {
        return Ok(parts.pop());
    }
    let mut parts = parts.into_iter();
    let mut acc = parts.next().unwrap_or_else(|| unreachable!());
    for p in parts {
        let width = p.groups.width();
        let dim_maps: Vec<Vec<u32>> = (0..width)
            .map(|j| (0..p.dims[j].values.len()).map(|c| acc.dims[j].code_from(&p.dims[j], c)).collect())
            .collect();
        let distinct_maps: Vec<Vec<u32>> = p
            .accs
            .iter()
            .zip(acc.accs.iter_mut())
            .map(|(src, dst)| match (src, dst.distinct_codes()) {
                (Acc::Distinct(sc, _), Some(dc)) => (0..sc.values.len()).map(|c| dc.code_from(sc, c)).collect(),
                _ => vec![],
            })
            .collect();
        let mut key = vec![0u32; width];
        for g in 0..p.groups.len() {
            for (j, k) in key.iter_mut().enumerate() {
                *k = dim_maps[j][p.groups.codes_of(g)[j] as usize];
            }
            let to = acc.groups.id(p.groups.buckets[g], &key) as usize;
            for (i, a) in acc.accs.iter_mut().enumerate() {
                if a.len() <= to {
                    a.resize(to + 1);
                }
                a.merge_group(to, &p.accs[i], g, &distinct_maps[i]);
            }
        }
        if acc.groups.len() > max_groups {
            return Err(EngineError::TooManyGroups(max_groups));
        }
    }
    let n = acc.groups.len();
    for a in acc.accs.iter_mut() {
        a.resize(n);
    }
    Ok(Some(acc))
}
