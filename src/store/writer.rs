//! The one writer: a thread that owns the only write connection and commits the requests
//! waiting for it in groups, one transaction and one fsync a group, answering each request
//! only after its group's commit. Leases go first ([`Lane`]).

use std::collections::VecDeque;
use std::thread::JoinHandle;

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, Notify};

use super::bus;
use super::checkpoint::Checkpoints;
use super::StoreError;
use crate::telemetry;

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

/// Which requests a group takes. A dialer waiting for a lease holds up calls to customers,
/// and when a burst of windows opens at one instant, every lease committed together with the
/// acks, ticks and new callbacks waiting at the same moment is a lease answered later.
/// Requests sent with [`WriterHandle::write_first`] therefore form a group of their own
/// whenever any are waiting; the others wait for the next group, but never behind more than
/// [`PASS_OVER_MAX`] groups that went first (BENCHMARKS.md: leases first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Ahead of the others ([`WriterHandle::write_first`]).
    First,
    /// In the order they came.
    InTurn,
}

enum Msg {
    Job(Box<dyn Job>, Lane),
    /// Look at the bus's release request ([`WriterHandle::release`]).
    Release,
    Stop,
}

/// The bus's request to release pushes up to an instant, answered between two groups. It is
/// not a job in the queue: it takes no room from clients, and a full queue only means the
/// writer will come to it after the next group.
type ReleaseSlot = Arc<Mutex<Option<ReleaseAsked>>>;

/// A release: the instant, the id to watch from, and where the answer goes.
type ReleaseAsked = (
    i64,
    Option<(i64, i64)>,
    oneshot::Sender<Result<bus::Released, StoreError>>,
);

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    release: ReleaseSlot,
}

/// The thread itself; [`WriterThread::stop`] drains what is queued and joins it.
pub struct WriterThread {
    tx: mpsc::Sender<Msg>,
    join: JoinHandle<()>,
}

/// Starts the writer thread; `pushed` is woken after each commit that wrote a bus push.
pub fn spawn(
    conn: Connection,
    checkpoints: Checkpoints,
    capacity: usize,
    batch_max: usize,
    pushed: Arc<Notify>,
) -> Result<(WriterHandle, WriterThread), StoreError> {
    // One place more than the requests it holds, for the bus's release message: at most one
    // is ever waiting, and it must not take a client's place (`write_in` leaves it free).
    let (tx, rx) = mpsc::channel(capacity + 1);
    let release = ReleaseSlot::default();
    let slot = Arc::clone(&release);
    let join = std::thread::Builder::new()
        .name("redial-writer".into())
        .spawn(move || run(conn, checkpoints, rx, batch_max, &pushed, &slot))
        .map_err(|e| StoreError::Io(e.to_string()))?;
    let handle = WriterHandle {
        tx: tx.clone(),
        release,
    };
    Ok((handle, WriterThread { tx, join }))
}

impl WriterHandle {
    /// Requests sent and not yet taken by the writer.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

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
        self.write_in(Lane::InTurn, op).await
    }

    /// Like [`WriterHandle::write`], but in a group ahead of the other requests waiting (see
    /// the module's documentation): for dialers' leases.
    pub async fn write_first<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_in(Lane::First, op).await
    }

    async fn write_in<T, E, F>(&self, lane: Lane, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, answer) = Request::boxed(op);
        let busy = || {
            E::from(StoreError::Busy(format!(
                "{} requests are already waiting for the database",
                self.tx.max_capacity() - 1
            )))
        };
        // The last place is the release message's.
        let permit = match self.tx.try_reserve() {
            Ok(permit) if self.tx.capacity() > 0 => permit,
            Ok(_) | Err(mpsc::error::TrySendError::Full(())) => return Err(busy()),
            Err(mpsc::error::TrySendError::Closed(())) => return Err(StoreError::Closed.into()),
        };
        permit.send(Msg::Job(job, lane));
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
            .send(Msg::Job(job, Lane::InTurn))
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }
}

impl WriterHandle {
    /// Releases the bus's pushes visible at `at_ms` ([`bus::release`]), between two groups.
    /// One caller at a time (the bus).
    pub async fn release(
        &self,
        at_ms: i64,
        watch: Option<(i64, i64)>,
    ) -> Result<bus::Released, StoreError> {
        let (reply, answer) = oneshot::channel();
        *self.release.lock().unwrap_or_else(|e| e.into_inner()) = Some((at_ms, watch, reply));
        if let Err(mpsc::error::TrySendError::Closed(_)) = self.tx.try_send(Msg::Release) {
            return Err(StoreError::Closed);
        }
        answer.await.map_err(|_| StoreError::Closed)?
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

fn run(
    conn: Connection,
    checkpoints: Checkpoints,
    mut rx: mpsc::Receiver<Msg>,
    batch_max: usize,
    pushed: &Notify,
    release: &ReleaseSlot,
) {
    let mut waiting = Waiting::default();
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(batch_max);
    let mut open = true;
    while open || !waiting.is_empty() {
        let asked = release.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((at_ms, watch, reply)) = asked {
            let _ = reply.send(bus::release(&conn, at_ms, watch).map_err(StoreError::from));
        }
        if open && waiting.is_empty() {
            open = waiting.take(rx.blocking_recv());
        }
        // Take whatever else is already waiting.
        while open && waiting.len() < batch_max {
            match rx.try_recv() {
                Ok(msg) => open = waiting.take(Some(msg)),
                Err(_) => break,
            }
        }
        if !open {
            // Refuse new requests but finish every one already accepted.
            rx.close();
            while let Ok(msg) = rx.try_recv() {
                waiting.take(Some(msg));
            }
        }
        waiting.next_group(&mut group, batch_max);
        if !group.is_empty() {
            commit_group(&conn, &mut group);
            if bus::take_pushed() {
                pushed.notify_one();
            }
            checkpoints.after_commit(&conn);
        }
    }
    // The checkpoint thread ends first; closing the last connection then checkpoints the WAL
    // into the database file.
    drop(checkpoints);
    tracing::debug!("writer stopped");
}

/// The most groups that may go first while a request waits in turn.
pub const PASS_OVER_MAX: usize = 4;

/// Requests taken from the channel and not yet run, by lane.
#[derive(Default)]
struct Waiting {
    first: Vec<Box<dyn Job>>,
    in_turn: VecDeque<Box<dyn Job>>,
    /// Groups that went first while the oldest request in turn waited.
    passed_over: usize,
}

impl Waiting {
    /// Takes what the channel gave; `false` once it says the writer stops.
    fn take(&mut self, msg: Option<Msg>) -> bool {
        match msg {
            Some(Msg::Job(job, Lane::First)) => self.first.push(job),
            Some(Msg::Job(job, Lane::InTurn)) => self.in_turn.push_back(job),
            Some(Msg::Release) => {}
            Some(Msg::Stop) | None => return false,
        }
        true
    }

    fn len(&self) -> usize {
        self.first.len() + self.in_turn.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the next group into `group`: every request going first, alone if any are waiting
    /// and the requests in turn have not been passed over [`PASS_OVER_MAX`] times yet; then
    /// requests in turn, oldest first, up to `batch_max` in all.
    fn next_group(&mut self, group: &mut Vec<Box<dyn Job>>, batch_max: usize) {
        group.append(&mut self.first);
        if !group.is_empty() && !self.in_turn.is_empty() && self.passed_over < PASS_OVER_MAX {
            self.passed_over += 1;
            return;
        }
        self.passed_over = 0;
        let room = batch_max.saturating_sub(group.len()).max(1);
        let room = room.min(self.in_turn.len());
        group.extend(self.in_turn.drain(..room));
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(requests = group.len()))]
fn commit_group(conn: &Connection, group: &mut Vec<Box<dyn Job>>) {
    let started = std::time::Instant::now();
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
    telemetry::pending::settle(failed.is_none());
    telemetry::group(group.len(), started.elapsed(), failed.is_none());
    for job in group.drain(..) {
        job.answer(failed.clone());
    }
}

/// Runs every job of the group in the open transaction. A job may refuse only before it has
/// written anything (a bad call id, a finished callback, ...); that leaves nothing to undo
/// and costs the others nothing, which is why there is no savepoint per request, whose page
/// copies cost the writer more than anything else it saves (BENCHMARKS.md: no savepoints). A job that fails after writing, or an
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
        let (handle, thread) =
            spawn(conn, checkpoints, CAPACITY, 64, Arc::new(Notify::new())).unwrap();
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

    /// A job that holds the writer until `release` is sent, running once this returns: the
    /// requests sent meanwhile wait, to form the next group.
    async fn hold(
        handle: &WriterHandle,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), StoreError>>,
    ) {
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
        (release, held)
    }

    /// Holds the writer in a job of its own until `jobs` more requests are queued behind it,
    /// so that those form the next group; returns their answers.
    async fn one_group<F>(handle: &WriterHandle, jobs: Vec<F>) -> Vec<Result<(), StoreError>>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let (release, held) = hold(handle).await;
        let n = jobs.len();
        let answers: Vec<_> = jobs
            .into_iter()
            .map(|job| {
                let handle = handle.clone();
                tokio::spawn(async move { handle.write(job).await })
            })
            .collect();
        while (handle.tx.capacity() - 1) > CAPACITY - n {
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

    /// A request that goes first is committed before one that was waiting in turn, and in a
    /// group of its own: the one in turn, run afterwards, sees it committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_sent_first_is_committed_ahead_of_one_waiting_in_turn() {
        let (handle, thread, dir) = writer();
        let path = dir.path().join("w.db");
        let (release, held) = hold(&handle).await;
        let in_turn = {
            let handle = handle.clone();
            tokio::spawn(async move {
                handle
                    .write(move |c| {
                        let seen: i64 = Connection::open(&path)?.query_row(
                            "SELECT count(*) FROM t WHERE x = 'first'",
                            [],
                            |r| r.get(0),
                        )?;
                        c.execute("INSERT INTO t (x) VALUES ('in turn')", [])?;
                        Ok::<_, StoreError>(seen)
                    })
                    .await
            })
        };
        while (handle.tx.capacity() - 1) > CAPACITY - 1 {
            tokio::task::yield_now().await;
        }
        let first = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.write_first(insert("first", false)).await })
        };
        while (handle.tx.capacity() - 1) > CAPACITY - 2 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(
            in_turn.await.unwrap().unwrap(),
            1,
            "the request sent first was committed before the one in turn ran"
        );
        tokio::task::spawn_blocking(move || thread.stop())
            .await
            .unwrap();
        assert_eq!(rows(&dir), ["first", "in turn"]);
    }

    /// A job that does nothing, for the order of groups.
    struct Noop;

    impl Job for Noop {
        fn run(&mut self, _: &Connection) -> bool {
            true
        }
        fn answer(self: Box<Self>, _: Option<StoreError>) {}
    }

    /// However many requests keep going first, one waiting in turn joins a group after at
    /// most [`PASS_OVER_MAX`] of theirs.
    #[test]
    fn a_request_in_turn_is_passed_over_a_bounded_number_of_times() {
        let mut waiting = Waiting::default();
        let mut group = Vec::new();
        assert!(waiting.take(Some(Msg::Job(Box::new(Noop), Lane::InTurn))));
        let mut groups = 0;
        while !waiting.in_turn.is_empty() {
            for _ in 0..8 {
                waiting.take(Some(Msg::Job(Box::new(Noop), Lane::First)));
            }
            group.clear();
            waiting.next_group(&mut group, 8);
            groups += 1;
        }
        assert_eq!(groups, PASS_OVER_MAX + 1);
        assert_eq!(group.len(), 9, "a full group still takes the one in turn");
        assert!(!waiting.take(Some(Msg::Stop)));
        assert!(!waiting.take(None));
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
