//! The one writer. A dedicated thread owns the only write connection; requests reach it over a
//! bounded channel and are committed in groups: the thread takes every request waiting (up to
//! `batch_max`), runs them one after the other in one transaction, commits once, and only then
//! answers them. One fsync is shared by the whole group, which is what makes
//! `synchronous=FULL` affordable.
//!
//! A request refuses (bad call id, finished callback, ...) before it writes, so a refusal
//! leaves nothing to undo and costs the others nothing; that is why no savepoint per request is
//! needed, whose page copies were a fifth of the writer's time. The writer checks the rule: a
//! request that fails after writing fails its whole group (see `run_group`).

use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpoints;
use super::StoreError;

/// One request in a group: run once inside the group's transaction, answered once after the
/// commit.
trait Job: Send {
    /// Runs the request; `true` keeps its changes, `false` rolls them back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the client with the request's result, or with `failed` if the group could not
    /// be committed (or the request never ran).
    fn answer(self: Box<Self>, failed: Option<StoreError>);
}

struct Request<T, E, F> {
    op: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job for Request<T, E, F>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let op = self.op.take().expect("a request runs once");
        let result = op(conn);
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn answer(self: Box<Self>, failed: Option<StoreError>) {
        let answer = match (self.result, failed) {
            // A refusal is the answer even if the group failed: the request changed nothing.
            (Some(Err(refused)), _) => Err(refused),
            (Some(Ok(value)), None) => Ok(value),
            (_, Some(e)) => Err(e.into()),
            (None, None) => Err(StoreError::Closed.into()),
        };
        let _ = self.reply.send(answer);
    }
}

impl<T, E, F> Request<T, E, F>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    /// The job for `op`, and where its answer will arrive.
    fn boxed(op: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, E>>) {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Request {
            op: Some(op),
            result: None,
            reply,
        });
        (job, answer)
    }
}

enum Msg {
    Job(Box<dyn Job>),
    Stop,
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
}

/// The thread itself; [`WriterThread::stop`] drains what is queued and joins it.
pub struct WriterThread {
    tx: mpsc::Sender<Msg>,
    join: JoinHandle<()>,
}

pub fn spawn(
    conn: Connection,
    checkpoints: Checkpoints,
    capacity: usize,
    batch_max: usize,
) -> Result<(WriterHandle, WriterThread), StoreError> {
    let (tx, rx) = mpsc::channel(capacity);
    let join = std::thread::Builder::new()
        .name("redial-writer".into())
        .spawn(move || run(conn, checkpoints, rx, batch_max))
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok((WriterHandle { tx: tx.clone() }, WriterThread { tx, join }))
}

impl WriterHandle {
    /// Runs `op` in the writer's next group and answers once that group is committed. An `Err`
    /// from `op` rolls back everything `op` did and nothing else. When the queue is full the
    /// request is refused at once ([`StoreError::Busy`]) instead of waiting: a client told to
    /// come back is better off than one whose request waits behind thousands of others, and
    /// the memory held by waiting requests stays bounded.
    pub async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, answer) = Request::boxed(op);
        self.tx.try_send(Msg::Job(job)).map_err(|e| {
            E::from(match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy(format!(
                    "{} requests are already waiting for the database",
                    self.tx.max_capacity()
                )),
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })
        })?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Like [`WriterHandle::write`], but waits for room in the queue: for the service's own
    /// background work (scheduler, purge), which must not be dropped.
    pub async fn write_waiting<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, answer) = Request::boxed(op);
        self.tx
            .send(Msg::Job(job))
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }
}

impl WriterThread {
    /// Commits everything already queued, then ends the thread. Blocks until it has.
    pub fn stop(self) {
        let _ = self.tx.blocking_send(Msg::Stop);
        drop(self.tx);
        if self.join.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
    }
}

fn run(conn: Connection, checkpoints: Checkpoints, mut rx: mpsc::Receiver<Msg>, batch_max: usize) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(batch_max);
    let mut stopping = false;
    while !stopping {
        match rx.blocking_recv() {
            Some(Msg::Job(job)) => group.push(job),
            Some(Msg::Stop) | None => stopping = true,
        }
        // Take whatever else is already waiting: that is the group.
        while group.len() < batch_max && !stopping {
            match rx.try_recv() {
                Ok(Msg::Job(job)) => group.push(job),
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        if stopping {
            // Refuse new requests but finish every one already accepted.
            rx.close();
            while let Ok(msg) = rx.try_recv() {
                if let Msg::Job(job) = msg {
                    group.push(job);
                }
            }
        }
        if !group.is_empty() {
            commit_group(&conn, &mut group);
            checkpoints.after_commit(&conn);
        }
    }
    // The checkpoint thread ends first; closing the last connection then checkpoints the WAL
    // into the database file.
    drop(checkpoints);
    tracing::debug!("writer stopped");
}

fn commit_group(conn: &Connection, group: &mut Vec<Box<dyn Job>>) {
    let failed = match conn.execute_batch("BEGIN IMMEDIATE") {
        Err(e) => Some(StoreError::from(e)),
        Ok(()) => match run_group(conn, group) {
            Ok(()) => conn.execute_batch("COMMIT").err().map(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                StoreError::from(e)
            }),
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Some(e)
            }
        },
    };
    for job in group.drain(..) {
        job.answer(failed.clone());
    }
}

/// Runs every job of the group in the open transaction. A job may refuse only before it has
/// written anything; that costs the others nothing. A job that fails after writing, or an
/// error that made SQLite abandon the transaction, fails the whole group: it is rolled back and
/// every request in it answered with the error, so nothing is ever half done.
fn run_group(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    for job in group.iter_mut() {
        let before = conn.total_changes();
        let kept = job.run(conn);
        if conn.is_autocommit() {
            return Err(StoreError::Aborted(
                "SQLite abandoned the transaction after an error".into(),
            ));
        }
        if !kept && conn.total_changes() != before {
            return Err(StoreError::Aborted(
                "a request in the same transaction failed after writing".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPACITY: usize = 16;

    type Op = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

    /// A writer on a fresh file with one table, and the file's path.
    fn writer() -> (WriterHandle, WriterThread, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT NOT NULL);")
            .unwrap();
        let checkpoints = Checkpoints::start(&path, &conn).unwrap();
        let (handle, thread) = spawn(conn, checkpoints, CAPACITY, 64).unwrap();
        (handle, thread, dir)
    }

    fn insert(
        x: &'static str,
        then_fail: bool,
    ) -> impl FnOnce(&Connection) -> Result<(), StoreError> {
        move |c| {
            c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
            if then_fail {
                return Err(StoreError::Io(format!("{x} failed after writing")));
            }
            Ok(())
        }
    }

    fn refuse(c: &Connection) -> Result<(), StoreError> {
        let _: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        Err(StoreError::Io("refused before writing".into()))
    }

    /// Holds the writer in a job of its own until `jobs` more requests are queued behind it,
    /// so that those form the next group; returns their answers.
    async fn one_group<F>(handle: &WriterHandle, jobs: Vec<F>) -> Vec<Result<(), StoreError>>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (running, started) = oneshot::channel::<()>();
        let held = {
            let handle = handle.clone();
            tokio::spawn(async move {
                handle
                    .write(move |_| {
                        running.send(()).unwrap();
                        gate.recv().unwrap();
                        Ok::<_, StoreError>(())
                    })
                    .await
            })
        };
        started.await.unwrap();
        let n = jobs.len();
        let answers: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let handle = handle.clone();
                tokio::spawn(async move { handle.write(job).await })
            })
            .collect();
        while handle.tx.capacity() > CAPACITY - n {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.unwrap());
        }
        out
    }

    fn rows(dir: &tempfile::TempDir) -> Vec<String> {
        let c = Connection::open(dir.path().join("w.db")).unwrap();
        let mut s = c.prepare("SELECT x FROM t ORDER BY x").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refusal_before_writing_costs_the_rest_of_the_group_nothing() {
        let (handle, thread, dir) = writer();
        let jobs: Vec<Op> = vec![
            Box::new(insert("a", false)),
            Box::new(refuse),
            Box::new(insert("c", false)),
        ];
        let answers = one_group(&handle, jobs).await;
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(&answers[1], Err(StoreError::Io(m)) if m == "refused before writing"));
        tokio::task::spawn_blocking(move || thread.stop())
            .await
            .unwrap();
        assert_eq!(rows(&dir), ["a", "c"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_after_writing_rolls_back_the_whole_group() {
        let (handle, thread, dir) = writer();
        let jobs: Vec<Op> = vec![
            Box::new(insert("a", false)),
            Box::new(insert("b", true)),
            Box::new(insert("c", false)),
        ];
        let answers = one_group(&handle, jobs).await;
        assert!(
            matches!(&answers[0], Err(StoreError::Aborted(_))),
            "{answers:?}"
        );
        assert!(matches!(&answers[1], Err(StoreError::Io(m)) if m == "b failed after writing"));
        assert!(
            matches!(&answers[2], Err(StoreError::Aborted(_))),
            "{answers:?}"
        );
        tokio::task::spawn_blocking(move || thread.stop())
            .await
            .unwrap();
        assert!(rows(&dir).is_empty(), "nothing of the group was kept");
    }
}
