//! The SQLite file: its schema, the single writer that commits in groups, and the read
//! connections. Statements live in the submodules named after what they own; nothing outside
//! `store` writes SQL. A bound `LIMIT` is written `LIMIT ?N + 0` (see the test
//! `bound_limits_do_not_reprepare`).

pub mod audit;
pub mod backup;
pub mod bulk;
pub mod bus;
pub mod callbacks;
pub mod catalogue;
mod checkpoint;
pub mod contacts;
pub mod dnc;
pub mod events;
pub mod gauges;
pub mod lifecycle;
pub mod lists;
pub mod outcomes;
pub mod overview;
pub mod purge;
pub mod relay;
pub mod reports;
pub mod schema;
mod sql;
pub mod telephony;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Notify;

pub use writer::{WriterHandle, WriterThread};

/// `PRAGMA synchronous` for the write connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    /// fsync at every commit: a reply of success survives a power cut.
    Full,
    /// fsync at checkpoints only: a reply survives a crash of the process, not of the machine.
    Normal,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// Requests that may wait for the writer before senders have to wait too.
    pub queue_capacity: usize,
    /// The most requests committed in one transaction.
    pub batch_max: usize,
    /// The largest the database file may grow, in MiB; `None`: as large as the disk allows.
    pub max_mib: Option<u64>,
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            synchronous: Synchronous::Full,
            queue_capacity: 16_384,
            batch_max: 1024,
            max_mib: None,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {message}")]
    Sqlite {
        code: Option<rusqlite::ErrorCode>,
        message: String,
    },
    #[error("the database writer has stopped")]
    Closed,
    /// The service is at capacity; trying again shortly works.
    #[error("the service is busy, try again shortly: {0}")]
    Busy(String),
    /// The transaction was rolled back for a reason outside this request; trying again works.
    #[error("not stored, try again: {0}")]
    Aborted(String),
    #[error("{0}")]
    Schema(String),
    #[error("{0}")]
    Io(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let code = e.sqlite_error_code();
        let message = match code {
            Some(rusqlite::ErrorCode::DiskFull) => format!(
                "the database is full (its disk, or the --max-db-mib limit); nothing of this \
                 request was stored ({e})"
            ),
            Some(rusqlite::ErrorCode::ReadOnly) => format!(
                "the database file cannot be written (read-only file or file system); nothing \
                 of this request was stored ({e})"
            ),
            _ => e.to_string(),
        };
        StoreError::Sqlite { code, message }
    }
}

/// A handle on the database: the writer's queue and a pool of read connections.
#[derive(Clone)]
pub struct Store {
    writer: WriterHandle,
    readers: Arc<Readers>,
    /// Woken after each commit that wrote a bus push ([`bus`]).
    pushed: Arc<Notify>,
}

impl Store {
    /// Opens (creating it and its folder if needed) and upgrades the database, then starts the
    /// writer thread. The returned [`WriterThread`] must be stopped to flush on shutdown.
    pub fn open(options: &StoreOptions) -> Result<(Store, WriterThread), StoreError> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Io(format!("cannot create folder {}: {e}", dir.display()))
            })?;
        }
        let mut conn = open_write_connection(&options.path, options.synchronous)?;
        schema::migrate(&mut conn, None)?;
        // A file that opens but cannot be written (read-only, or on a read-only file system)
        // is refused now, not at the first request.
        conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")
            .map_err(|e| {
                StoreError::Io(format!("{} cannot be written: {e}", options.path.display()))
            })?;
        if let Some(mib) = options.max_mib {
            let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = mib * 1024 * 1024 / page_size.max(512);
            conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        }
        // Checkpoints run in their own thread (see `checkpoint`), not inside a commit.
        let checkpoints = checkpoint::Checkpoints::start(&options.path, &conn)?;
        let pushed = Arc::new(Notify::new());
        let (writer, thread) = writer::spawn(
            conn,
            checkpoints,
            options.queue_capacity,
            options.batch_max,
            Arc::clone(&pushed),
        )?;
        let readers = Arc::new(Readers {
            path: options.path.clone(),
            idle: Mutex::new(Vec::new()),
        });
        Ok((
            Store {
                writer,
                readers,
                pushed,
            },
            thread,
        ))
    }

    /// Runs `op` in the writer (see [`WriterHandle::write`]).
    pub async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.write(op).await
    }

    /// Runs `op` in the writer ahead of other requests (see [`WriterHandle::write_first`]).
    pub async fn write_first<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.write_first(op).await
    }

    /// Runs `op` in the writer, waiting for room in its queue (see
    /// [`WriterHandle::write_waiting`]).
    pub async fn write_waiting<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writer.write_waiting(op).await
    }

    /// Releases the bus's pushes visible at `at_ms`, in the writer between two groups (see
    /// [`bus::release`]).
    pub async fn release_pushes(
        &self,
        at_ms: i64,
        watch: Option<(i64, i64)>,
    ) -> Result<bus::Released, StoreError> {
        self.writer.release(at_ms, watch).await
    }

    /// Completes after the next commit that wrote a bus push (or at once, if one was committed
    /// since the last call).
    pub async fn pushed(&self) {
        self.pushed.notified().await;
    }

    /// Runs `op` on a read connection, off the async threads.
    /// Write requests waiting for the writer.
    pub fn write_queue_depth(&self) -> usize {
        self.writer.depth()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.readers.path
    }

    pub async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(op))
            .await
            .map_err(|e| StoreError::Io(format!("read task failed: {e}")))?
    }
}

/// Whether the file has room for another page: below `--max-db-mib` (SQLite's
/// `max_page_count`), so a write can succeed. Asked of the write connection by `/readyz`.
pub fn has_room(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let used: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let most: i64 = conn.query_row("PRAGMA max_page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    Ok(used < most || free > 0)
}

/// Opens the write connection with the pragmas redial relies on.
pub fn open_write_connection(path: &Path, sync: Synchronous) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(format!(
            "{} cannot use WAL journaling (got {mode})",
            path.display()
        )));
    }
    let sync = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    // Statement journals (a statement that fails is undone alone) stay in memory rather than
    // in a temporary file written for every page a statement touches.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Io(format!("cannot open database {}: {e}", path.display()))
}

/// Read-only connections, opened on demand and kept for reuse.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<T>(
        &self,
        op: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().expect("reader pool lock").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(Duration::from_secs(5))?;
                conn
            }
        };
        let result = op(&conn);
        self.idle.lock().expect("reader pool lock").push(conn);
        result
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, StatementStatus};

    /// `.cargo/config.toml` compiles SQLite without the shared page-cache lock and without
    /// memory statistics (see there why).
    #[test]
    fn sqlite_is_built_without_the_locks_redial_does_not_need() {
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("SELECT compile_options FROM pragma_compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    /// A file at its `--max-db-mib` has no room: SQLite would refuse the next new page.
    #[test]
    fn a_file_at_its_page_limit_has_no_room() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::schema::migrate(&mut conn, None).unwrap();
        assert!(super::has_room(&conn).unwrap());
        // max_page_count is never set below the pages in use: this is "full now".
        conn.query_row("PRAGMA max_page_count = 1", [], |_| Ok(()))
            .unwrap();
        assert!(!super::has_room(&conn).unwrap());
    }

    /// The slice the statements of `callbacks::page` and the reports read by is the one
    /// `callbacks_by_slice` is keyed on; another would leave the index unused.
    #[test]
    fn the_slice_of_the_statements_is_the_index_s() {
        let index = format!("(window_start / {})", super::callbacks::SLICE_MS);
        assert!(super::schema::SCHEMA_SQL.contains(&index), "{index}");
    }

    /// SQLite reads the value of a bare `LIMIT ?N` while planning, and so marks the statement
    /// to be prepared again whenever `?N` is bound: every lease, tick and purge batch paid a
    /// fresh prepare (BENCHMARKS.md: bound LIMITs). An expression is not read at planning
    /// time, so it is prepared once; every statement of the store writes it so.
    #[test]
    fn bound_limits_do_not_reprepare() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        let mut statement = conn
            .prepare("SELECT x FROM t ORDER BY x LIMIT ?1 + 0")
            .unwrap();
        for n in 1..=3 {
            let rows = statement.query_map([n], |r| r.get::<_, i64>(0)).unwrap();
            assert_eq!(rows.count(), n as usize);
        }
        assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);

        // Every file of the store, read from the folder: a new one cannot escape the rule.
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let mut files = 0;
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            files += 1;
            let source = std::fs::read_to_string(&path).unwrap();
            let file = path.file_name().unwrap().to_string_lossy();
            for (at, _) in source.match_indices("LIMIT ?") {
                let rest = &source[at + "LIMIT ?".len()..];
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                // `?` then a digit or a space is a parameter; anything else is prose.
                let parameter = digits > 0 || rest.starts_with(char::is_whitespace);
                assert!(
                    !parameter || rest[digits..].starts_with(" + 0"),
                    "{file}: a bare bound LIMIT: {}",
                    &source[at..(at + 20).min(source.len())]
                );
            }
        }
        assert!(files >= 10, "read {files} files of {}", folder.display());
    }
}
