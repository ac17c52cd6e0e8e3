//! Property tests: rendering any AST and parsing it back gives the same AST.

use super::filters::{self, FilterClause, FilterOp};
use super::having::{self, HavingClause, HavingOp};
use super::metrics::{self, MetricRef};
use super::show::{self, DimensionSegment, Show};
use super::sort::{self, SortItem};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,8}"
}

fn value() -> impl Strategy<Value = String> {
    // Anything but `]` (the grammar's one forbidden character), quotes and commas included.
    "[a-zA-Z0-9 ,\"|\\-_.é]{0,6}"
}

fn filter_op() -> impl Strategy<Value = FilterOp> {
    prop_oneof![
        Just(FilterOp::In),
        Just(FilterOp::NotIn),
        Just(FilterOp::StartsWith),
        Just(FilterOp::Contains),
        Just(FilterOp::Eq),
        Just(FilterOp::Lt),
        Just(FilterOp::Lte),
        Just(FilterOp::Gt),
        Just(FilterOp::Gte),
        Just(FilterOp::Between),
    ]
}

fn clause() -> impl Strategy<Value = FilterClause> {
    (name(), name(), filter_op(), proptest::collection::vec(value(), 1..4)).prop_map(
        |(dimension, field, op, mut values)| {
            if let Some(n) = op.arity() {
                values.resize(n, "1".into());
            }
            FilterClause { dimension, field, op, values }
        },
    )
}

fn having_op() -> impl Strategy<Value = HavingOp> {
    prop_oneof![
        Just(HavingOp::EqualTo),
        Just(HavingOp::GreaterThan),
        Just(HavingOp::LessThan),
        Just(HavingOp::NotEqualTo),
        Just(HavingOp::NotGreaterThan),
        Just(HavingOp::NotLessThan),
        Just(HavingOp::Between),
        Just(HavingOp::NotBetween),
    ]
}

fn having_clause() -> impl Strategy<Value = HavingClause> {
    (name(), having_op(), proptest::collection::vec(-1e12f64..1e12, 1..4)).prop_map(|(metric, op, mut values)| {
        if matches!(op, HavingOp::Between | HavingOp::NotBetween) {
            values.resize(2, 0.0);
            values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        HavingClause { metric, op, values }
    })
}

proptest! {
    #[test]
    fn filters_round_trip(clauses in proptest::collection::vec(clause(), 1..4)) {
        prop_assert_eq!(filters::parse(&filters::render(&clauses)), Ok(clauses));
    }

    #[test]
    fn having_round_trips(clauses in proptest::collection::vec(having_clause(), 1..4)) {
        prop_assert_eq!(having::parse(&having::render(&clauses)), Ok(clauses));
    }

    #[test]
    fn sort_round_trips(items in proptest::collection::vec((name(), any::<bool>()), 1..5)) {
        let items: Vec<SortItem> = items
            .into_iter()
            .filter(|(c, _)| c != "dateTime")
            .map(|(column, descending)| SortItem { column, descending })
            .collect();
        prop_assert_eq!(sort::parse(&sort::render(&items)), Ok(items));
    }

    #[test]
    fn show_round_trips(n in name(), kind in 0..4u8, fields in proptest::collection::vec(name(), 1..4)) {
        let mut fields = fields;
        fields.dedup();
        fields.retain(|f| f != "all" && f != "none");
        let show = match kind {
            0 => Show::Default,
            1 => Show::All,
            2 => Show::None,
            _ if fields.is_empty() => Show::None,
            _ => Show::Fields({ let mut seen = Vec::new(); for f in fields { if !seen.contains(&f) { seen.push(f) } } seen }),
        };
        let seg = DimensionSegment { name: n, show };
        prop_assert_eq!(show::parse(&show::render(&seg)), Ok(seg));
    }

    #[test]
    fn metrics_round_trip(n in name(), params in proptest::collection::vec((name(), "[a-zA-Z0-9_,() ]{0,6}"), 0..3)) {
        let m = MetricRef { name: n, params };
        let parsed = metrics::parse(Some(&m.column_name()));
        // Whitespace inside bare values is insignificant only between tokens, so compare the
        // rendered forms.
        prop_assert_eq!(parsed.map(|v| v[0].column_name()), Ok(m.column_name()));
    }
}
