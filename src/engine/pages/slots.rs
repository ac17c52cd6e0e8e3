//! The unit's own accumulators for one dimension with many values in one time bucket (Q5's
//! `all` grain by `suppKey`): rows fold straight into slots indexed by the dimension's local
//! code, so no row looks up its group. Each slot a row reached becomes its group once, when
//! the unit ends ([`super::UnitState`]'s flush). The per-row lookup of the local code's group
//! was a random load into a table of tens of thousands of entries, in front of the random
//! add into the sums.

use crate::engine::EngineError;
use crate::engine::accum::Acc;
use crate::engine::buckets::SKIP;
use crate::engine::fold::fold_batch;
use crate::engine::group::BatchContext;
use crate::engine::plan::{AggFunc, QueryPlan};
use arrow::array::ArrayRef;

/// Fewest local codes worth it: below this the group table stays in the first-level cache
/// and the sums run in lanes.
const SLOT_MIN: usize = 65;

/// Most local codes (2 MiB per sum).
const SLOT_MAX: usize = 1 << 18;

/// Fewest rows per local code the unit reads. Every slot a row reached costs a group lookup
/// and a merge when the unit ends, so a dictionary nearly as large as the row group (Polars'
/// 122,880-row groups hold 70,000 of SF 10's 100,000 suppliers) does better looking up each
/// local code's group once and folding rows straight into the partial.
const SLOT_ROWS_PER_CODE: usize = 4;

/// Accumulators indexed by local code, and which codes a row reached.
pub(super) struct SlotAccs {
    /// One per aggregation of the plan.
    pub(super) accs: Vec<Acc>,
    /// Per local code, and a sink past them for skipped rows.
    seen: Vec<bool>,
}

impl SlotAccs {
    /// Whether a unit-long table of `space` local codes, for a unit of `rows` rows, takes this
    /// path: every aggregation is a count, sum, min or max without a filter of its own (so a
    /// row reaching its group is a row not `SKIP`), and the table is large but bounded, and
    /// small next to the unit.
    pub(super) fn fits(plan: &QueryPlan, space: usize, rows: usize) -> bool {
        (SLOT_MIN..=SLOT_MAX).contains(&space)
            && space.saturating_mul(SLOT_ROWS_PER_CODE) <= rows
            && plan.aggregations.iter().all(|a| {
                a.filter.is_none()
                    && matches!(
                        a.func,
                        AggFunc::Count | AggFunc::LongSum | AggFunc::DoubleSum | AggFunc::Min | AggFunc::Max
                    )
            })
    }

    pub(super) fn new(ctx: &BatchContext) -> SlotAccs {
        let accs =
            ctx.plan.aggregations.iter().zip(&ctx.integer_inputs).map(|(a, int)| Acc::new(a.func, *int)).collect();
        SlotAccs { accs, seen: Vec::new() }
    }

    /// Folds a batch: row `i` goes to slot `locals[i]` unless `gids[i]` is `SKIP`.
    pub(super) fn fold(
        &mut self,
        locals: &[u32],
        gids: &[u32],
        space: usize,
        col: &dyn Fn(&str) -> Result<ArrayRef, EngineError>,
        plan: &QueryPlan,
    ) -> Result<(), EngineError> {
        let slots: Vec<u32> = locals.iter().zip(gids).map(|(&l, &g)| l | u32::from(g == SKIP).wrapping_neg()).collect();
        // As the dictionary grows, the old sink becomes a code and starts unseen.
        let real = self.seen.len().saturating_sub(1).min(space);
        self.seen.truncate(real);
        self.seen.resize(space + 1, false);
        fold_batch(&mut self.accs, space, &slots, col, gids.len(), plan, Some(&mut self.seen))
    }

    /// The local codes below `space` that a row reached.
    pub(super) fn seen_slots(&self, space: usize) -> Vec<usize> {
        self.seen.iter().take(space).enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect()
    }
}
