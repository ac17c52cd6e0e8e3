//! The persistent job store: SQLite (WAL) for job rows, one Arrow IPC file per result with
//! its SHA-256 kept in the row, so a damaged file is detected instead of read.

use super::{Job, JobStatus};
use arrow::array::RecordBatch;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::io::Write;
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
            CREATE INDEX IF NOT EXISTS jobs_user ON jobs(user_id);
            CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);",
        )
        .map_err(e)?;
        // Columns added after the first release; an older database gains them here.
        for (col, ty) in
            [("owner_key", "TEXT"), ("result_bytes", "INTEGER"), ("result_sha256", "TEXT"), ("last_polled", "INTEGER")]
        {
            let has: bool = conn
                .prepare("SELECT 1 FROM pragma_table_info('jobs') WHERE name = ?1")
                .and_then(|mut st| st.exists(params![col]))
                .map_err(e)?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {col} {ty}")).map_err(e)?;
            }
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner_key)").map_err(e)?;
        remove_temp_files(dir);
        Ok(Store { conn, dir: dir.to_path_buf() })
    }

    /// Inserts a new job owned by the caller `key` (whose quotas it counts against).
    pub fn insert(&mut self, j: &Job, key: &str) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT INTO jobs (ticket, query, user_id, status, date_created, date_updated, error_status, error_body, render, owner_key, last_polled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?5)",
                params![
                    j.ticket,
                    j.query,
                    j.user,
                    j.status.name(),
                    j.created_ms,
                    j.updated_ms,
                    j.error.as_ref().map(|x| x.0),
                    j.error.as_ref().map(|x| x.1.clone()),
                    j.render,
                    key
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

    /// The caller's jobs: (pending, stored in all, bytes of stored results).
    pub fn usage(&mut self, key: &str) -> Result<(usize, usize, u64), String> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FILTER (WHERE status = 'pending'), COUNT(*), COALESCE(SUM(result_bytes), 0) FROM jobs WHERE owner_key = ?1",
                params![key],
                |r| Ok((r.get::<_, i64>(0)? as usize, r.get::<_, i64>(1)? as usize, r.get::<_, i64>(2)? as u64)),
            )
            .map_err(e)
    }

    /// Records the stored results' size and checksum.
    pub fn set_result(&mut self, ticket: &str, bytes: u64, sha256: &str) -> Result<(), String> {
        self.conn
            .execute(
                "UPDATE jobs SET result_bytes = ?2, result_sha256 = ?3 WHERE ticket = ?1",
                params![ticket, bytes as i64, sha256],
            )
            .map(|_| ())
            .map_err(e)
    }

    /// The stored results' checksum (`None` for results stored before checksums).
    pub fn result_sha256(&mut self, ticket: &str) -> Result<Option<String>, String> {
        self.conn
            .query_row("SELECT result_sha256 FROM jobs WHERE ticket = ?1", params![ticket], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(e)
    }

    /// Notes that someone asked about the job (it is not an orphan).
    pub fn touch(&mut self, ticket: &str, now: i64) -> Result<(), String> {
        self.conn
            .execute("UPDATE jobs SET last_polled = ?2 WHERE ticket = ?1", params![ticket, now])
            .map(|_| ())
            .map_err(e)
    }

    /// Pending jobs nobody has asked about since `cutoff`.
    pub fn orphans(&mut self, cutoff: i64) -> Result<Vec<String>, String> {
        let mut st = self
            .conn
            .prepare("SELECT ticket FROM jobs WHERE status = 'pending' AND COALESCE(last_polled, date_created) <= ?1")
            .map_err(e)?;
        let rows = st.query_map(params![cutoff], |r| r.get(0)).map_err(e)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(e)
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

    /// Marks every pending job failed with `error` (they were cut off); returns how many.
    pub fn fail_pending(&mut self, now: i64, error: &crate::error::Error) -> Result<usize, String> {
        let body = super::stored_failure(error, "");
        self.conn
            .execute(
                "UPDATE jobs SET status = 'failure', date_updated = ?1, error_status = ?2, error_body = ?3 WHERE status = 'pending'",
                params![now, error.status(), body],
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

/// Removes result files left half-written (a crash or a full disk during a write).
fn remove_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("results")) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes results atomically (temp file, then rename); returns the file's size and SHA-256.
/// A failed write leaves no file behind.
pub fn write_results(dir: &Path, ticket: &str, batch: &RecordBatch) -> Result<(u64, String), String> {
    let path = result_path(dir, ticket);
    let tmp = path.with_extension("arrow.tmp");
    let written = (|| {
        let mut bytes = Vec::new();
        let mut w = FileWriter::try_new(&mut bytes, &batch.schema()).map_err(e)?;
        w.write(batch).map_err(e)?;
        w.finish().map_err(e)?;
        drop(w);
        let mut file = std::fs::File::create(&tmp).map_err(|x| format!("{}: {x}", tmp.display()))?;
        file.write_all(&bytes).and_then(|_| file.sync_data()).map_err(|x| format!("{}: {x}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|x| format!("{}: {x}", path.display()))?;
        Ok((bytes.len() as u64, hex::encode(Sha256::digest(&bytes))))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Why stored results cannot be returned.
pub enum ReadError {
    /// The file is missing or unreadable.
    Gone(String),
    /// The file's bytes do not match its checksum, or do not parse.
    Corrupt(String),
}

/// Reads stored results, checking them against `sha256` when one was recorded.
pub fn read_results(dir: &Path, ticket: &str, sha256: Option<&str>) -> Result<RecordBatch, ReadError> {
    let path = result_path(dir, ticket);
    let bytes = std::fs::read(&path).map_err(|x| ReadError::Gone(x.to_string()))?;
    if let Some(want) = sha256
        && hex::encode(Sha256::digest(&bytes)) != want
    {
        return Err(ReadError::Corrupt("the result file does not match its checksum".into()));
    }
    // The IPC reader trusts offsets in the file; a damaged file must not take the server down.
    let parsed = std::panic::catch_unwind(|| -> Result<RecordBatch, String> {
        let reader = FileReader::try_new(std::io::Cursor::new(bytes.as_slice()), None).map_err(e)?;
        let schema = reader.schema();
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(e)?;
        arrow::compute::concat_batches(&schema, &batches).map_err(e)
    });
    match parsed {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(x)) => Err(ReadError::Corrupt(x)),
        Err(_) => Err(ReadError::Corrupt("the result file cannot be parsed".into())),
    }
}
