//! `format=debug`: the resolved plan, not executed (quiver's "explain"), naming files
//! relative to the data root.

use crate::catalog::physical::{PhysicalKind, PhysicalTable};
use crate::engine::plan::QueryPlan;
use crate::engine::{self, scan};
use serde_json::{Value, json};

/// The debug body for `plan` on `physical` of logical table `table`.
pub fn explain(table: &str, plan: &QueryPlan, physical: &PhysicalTable, request_id: &str) -> Value {
    let (units, pruned) = scan::plan_units(plan);
    let files: Vec<Value> = plan
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let rgs: Vec<usize> = units.iter().filter(|u| u.file == i).map(|u| u.row_group).collect();
            json!({"path": f.name, "rowGroups": f.num_row_groups(), "rowGroupsToScan": rgs})
        })
        .collect();
    let query = json!({
        "table": table,
        "physicalTable": {
            "name": physical.name,
            "kind": if physical.kind == PhysicalKind::Raw { "raw" } else { "rollup" },
            "grain": physical.grain.name(),
            "timeZone": physical.timezone.name(),
        },
        "grain": plan.grain.name(),
        "baseGrain": engine::base_grain(plan).name(),
        "timeZone": plan.tz.name(),
        "intervals": plan.intervals.iter().map(|i| i.iso_utc()).collect::<Vec<_>>(),
        "files": files,
        "rowGroupsPruned": pruned,
        "groupBy": plan.group_by.iter().map(|g| json!({"name": g.name, "column": g.column})).collect::<Vec<_>>(),
        "filters": plan.filters.iter().map(|f| json!({"column": f.column, "op": format!("{:?}", f.op)})).collect::<Vec<_>>(),
        "aggregations": plan.aggregations.iter().map(|a| json!({
            "name": a.name, "func": a.func.name(), "input": format!("{:?}", a.input),
            "filter": a.filter.as_ref().map(|f| format!("{} {:?}", f.column, f.op)),
        })).collect::<Vec<_>>(),
        "outputs": plan.outputs.iter().map(|o| json!({"name": o.name, "kind": format!("{:?}", o.kind), "hidden": o.hidden})).collect::<Vec<_>>(),
        "having": plan.shape.having.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>(),
        "sort": plan.shape.sort.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>(),
        "topN": plan.shape.top_n,
        "count": plan.shape.count,
    });
    json!({
        "status": 200, "statusName": "OK", "reason": "debug", "description": "DEBUG",
        "druidQuery": query, "requestId": request_id,
    })
}
