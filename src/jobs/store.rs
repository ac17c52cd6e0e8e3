//! The persistent job store: SQLite (WAL) for job rows, one Arrow IPC file per result.

use super::{Job, JobStatus};
use arrow::array::RecordBatch;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

pub struct Store {
    conn: Connection,
    dir: PathBuf,
}

fn e(x: impl std::fmt::Display) -> String {
    x.to_string()
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(dir.join("results")).map_err(|x| format!("cannot create {}: {x}", dir.display()))?;
        let conn = Connection::open(dir.join("jobs.sqlite")).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(e)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS jobs (
                ticket TEXT PRIMARY KEY,
                query TEXT NOT NULL,
                user_id TEXT NOT NULL,
                status TEXT NOT NULL,
                date_created INTEGER NOT NULL,
                date_updated INTEGER NOT NULL,
                error_status INTEGER,
                error_body TEXT,
                render TEXT
            );
            CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user_id);",
        )
        .map_err(e)?;
        Ok(Store { conn, dir: dir.to_path_buf() })
    }

    pub fn insert(&mut self, j: &Job) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT INTO jobs (ticket, query, user_id, status, date_created, date_updated, error_status, error_body, render)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    j.ticket,
                    j.query,
                    j.user,
                    j.status.name(),
                    j.created_ms,
                    j.updated_ms,
                    j.error.as_ref().map(|x| x.0),
                    j.error.as_ref().map(|x| x.1.clone()),
                    j.render
                ],
            )
            .map(|_| ())
            .map_err(e)
    }

    pub fn update(
        &mut self,
        ticket: &str,
        status: JobStatus,
        now: i64,
        error: Option<&(u16, String)>,
    ) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE jobs SET status = ?2, date_updated = ?3, error_status = ?4, error_body = ?5 WHERE ticket = ?1",
                params![ticket, status.name(), now, error.map(|x| x.0), error.map(|x| x.1.clone())],
            )
            .map(|_| ())
            .map_err(e)
    }

    fn row(r: &rusqlite::Row) -> rusqlite::Result<Job> {
        let status: String = r.get(3)?;
        let err_status: Option<u16> = r.get(6)?;
        let err_body: Option<String> = r.get(7)?;
        Ok(Job {
            ticket: r.get(0)?,
            query: r.get(1)?,
            user: r.get(2)?,
            status: JobStatus::parse(&status).unwrap_or(JobStatus::Failure),
            created_ms: r.get(4)?,
            updated_ms: r.get(5)?,
            error: err_status.zip(err_body),
            render: r.get(8)?,
        })
    }

    const COLUMNS: &'static str =
        "ticket, query, user_id, status, date_created, date_updated, error_status, error_body, render";

    pub fn get(&mut self, ticket: &str) -> Result<Option<Job>, String> {
        self.conn
            .query_row(&format!("SELECT {} FROM jobs WHERE ticket = ?1", Self::COLUMNS), params![ticket], Self::row)
            .optional()
            .map_err(e)
    }

    pub fn list(&mut self) -> Result<Vec<Job>, String> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {} FROM jobs ORDER BY date_created, ticket", Self::COLUMNS))
            .map_err(e)?;
        let rows = st.query_map([], Self::row).map_err(e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(e)
    }

    /// Marks every pending job failed (they were cut off); returns how many.
    pub fn fail_pending(&mut self, now: i64, reason: &str) -> Result<usize, String> {
        let body = serde_json::to_string_pretty(
            &crate::error::Error::new(crate::error::Reason::QueryCanceled, reason).body("", None),
        )
        .unwrap_or_default();
        self.conn
            .execute(
                "UPDATE jobs SET status = 'failure', date_updated = ?1, error_status = 500, error_body = ?2 WHERE status = 'pending'",
                params![now, body],
            )
            .map_err(e)
    }

    /// Deletes finished jobs last updated before `cutoff`, and their result files.
    pub fn expire(&mut self, cutoff: i64) -> Result<usize, String> {
        let tickets: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT ticket FROM jobs WHERE status != 'pending' AND date_updated <= ?1")
                .map_err(e)?;
            let rows = st.query_map(params![cutoff], |r| r.get(0)).map_err(e)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(e)?
        };
        for t in &tickets {
            let _ = std::fs::remove_file(result_path(&self.dir, t));
        }
        self.conn
            .execute("DELETE FROM jobs WHERE status != 'pending' AND date_updated <= ?1", params![cutoff])
            .map_err(e)
    }
}

fn result_path(dir: &Path, ticket: &str) -> PathBuf {
    dir.join("results").join(format!("{ticket}.arrow"))
}

/// Writes results atomically (temp file, then rename).
pub fn write_results(dir: &Path, ticket: &str, batch: &RecordBatch) -> Result<(), String> {
    let path = result_path(dir, ticket);
    let tmp = path.with_extension("arrow.tmp");
    let file = std::fs::File::create(&tmp).map_err(|x| format!("{}: {x}", tmp.display()))?;
    let mut w = FileWriter::try_new(file, &batch.schema()).map_err(e)?;
    w.write(batch).map_err(e)?;
    w.finish().map_err(e)?;
    std::fs::rename(&tmp, &path).map_err(|x| format!("{}: {x}", path.display()))
}

pub fn read_results(dir: &Path, ticket: &str) -> Result<RecordBatch, String> {
    let path = result_path(dir, ticket);
    let file = std::fs::File::open(&path).map_err(|x| format!("{}: {x}", path.display()))?;
    let reader = FileReader::try_new(file, None).map_err(e)?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(e)?;
    arrow::compute::concat_batches(&schema, &batches).map_err(e)
}
