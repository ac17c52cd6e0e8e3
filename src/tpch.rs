//! TPC-H `lineitem` as Parquet, generated with the `tpchgen` crate (deterministic), sorted
//! by ship date, zstd, about a million rows per row group — the benchmark data set.

use arrow::array::{
    ArrayRef, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;

#[derive(Default)]
struct Columns {
    ship: Vec<i32>,
    flag: Vec<u8>,
    status: Vec<u8>,
    mode: Vec<u8>,
    instruct: Vec<u8>,
    supp: Vec<i64>,
    qty: Vec<f64>,
    price: Vec<f64>,
    disc: Vec<f64>,
    tax: Vec<f64>,
}

const FLAGS: [&str; 3] = ["A", "N", "R"];
const STATUS: [&str; 2] = ["F", "O"];
const MODES: [&str; 7] = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"];
const INSTRUCT: [&str; 4] = ["COLLECT COD", "DELIVER IN PERSON", "NONE", "TAKE BACK RETURN"];

fn code(list: &[&str], v: &str) -> u8 {
    list.iter().position(|x| *x == v).unwrap_or(0) as u8
}

fn generate_part(sf: f64, part: i32, parts: i32) -> Columns {
    let mut c = Columns::default();
    for l in tpchgen::generators::LineItemGenerator::new(sf, part, parts).iter() {
        c.ship.push(l.l_shipdate.to_unix_epoch());
        c.flag.push(code(&FLAGS, l.l_returnflag));
        c.status.push(code(&STATUS, l.l_linestatus));
        c.mode.push(code(&MODES, l.l_shipmode));
        c.instruct.push(code(&INSTRUCT, l.l_shipinstruct));
        c.supp.push(l.l_suppkey);
        c.qty.push(l.l_quantity as f64);
        c.price.push(l.l_extendedprice.as_f64());
        c.disc.push(l.l_discount.as_f64());
        c.tax.push(l.l_tax.as_f64());
    }
    c
}

fn dict(codes: Vec<u8>, order: &[u32], values: &[&str]) -> ArrayRef {
    let keys: Vec<i32> = order.iter().map(|&i| codes[i as usize] as i32).collect();
    Arc::new(
        DictionaryArray::<Int32Type>::try_new(keys.into(), Arc::new(StringArray::from(values.to_vec())))
            .expect("valid dictionary"),
    )
}

/// Writes lineitem at scale factor `sf` to `path`; returns the row count.
pub fn write_lineitem(sf: f64, path: &Path) -> Result<usize, String> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8) as i32;
    let parts: Vec<Columns> = std::thread::scope(|s| {
        let hs: Vec<_> = (1..=threads).map(|p| s.spawn(move || generate_part(sf, p, threads))).collect();
        hs.into_iter().map(|h| h.join().expect("generator thread")).collect()
    });
    let mut all = Columns::default();
    for p in parts {
        all.ship.extend(p.ship);
        all.flag.extend(p.flag);
        all.status.extend(p.status);
        all.mode.extend(p.mode);
        all.instruct.extend(p.instruct);
        all.supp.extend(p.supp);
        all.qty.extend(p.qty);
        all.price.extend(p.price);
        all.disc.extend(p.disc);
        all.tax.extend(p.tax);
    }
    let n = all.ship.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&i| all.ship[i as usize]);
    let pick_f = |v: &[f64]| -> ArrayRef {
        Arc::new(Float64Array::from(order.iter().map(|&i| v[i as usize]).collect::<Vec<_>>()))
    };
    let ship: Vec<i64> = order.iter().map(|&i| all.ship[i as usize] as i64 * 86_400_000).collect();
    let dict_t = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let schema = Arc::new(Schema::new(vec![
        Field::new("ship_date", DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new("return_flag", dict_t(), false),
        Field::new("line_status", dict_t(), false),
        Field::new("ship_mode", dict_t(), false),
        Field::new("ship_instruct", dict_t(), false),
        Field::new("supp_key", DataType::Int64, false),
        Field::new("quantity", DataType::Float64, false),
        Field::new("extended_price", DataType::Float64, false),
        Field::new("discount", DataType::Float64, false),
        Field::new("tax", DataType::Float64, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(ship).with_timezone("UTC")),
        dict(all.flag, &order, &FLAGS),
        dict(all.status, &order, &STATUS),
        dict(all.mode, &order, &MODES),
        dict(all.instruct, &order, &INSTRUCT),
        Arc::new(Int64Array::from(order.iter().map(|&i| all.supp[i as usize]).collect::<Vec<_>>())),
        pick_f(&all.qty),
        pick_f(&all.price),
        pick_f(&all.disc),
        pick_f(&all.tax),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| e.to_string())?;
    let step = 1 << 20;
    let mut off = 0;
    while off < n {
        let len = step.min(n - off);
        w.write(&batch.slice(off, len)).map_err(|e| e.to_string())?;
        off += len;
    }
    w.close().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
    Ok(n)
}
