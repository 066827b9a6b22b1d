//! The one writer. A dedicated thread owns the only write connection; requests reach it over a
//! bounded channel and are committed in groups: the thread takes every request waiting (up to
//! `batch_max`), runs each inside its own savepoint in one transaction, commits once, and only
//! then answers them. One fsync is shared by the whole group, which is what makes
//! `synchronous=FULL` affordable, and a request that fails rolls back to its savepoint without
//! spoiling the others.

use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// One request in a group: run once inside a savepoint, answered once after the commit.
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
    capacity: usize,
    batch_max: usize,
) -> Result<(WriterHandle, WriterThread), StoreError> {
    let (tx, rx) = mpsc::channel(capacity);
    let join = std::thread::Builder::new()
        .name("redial-writer".into())
        .spawn(move || run(conn, rx, batch_max))
        .map_err(|e| StoreError::Io(e.to_string()))?;
    Ok((WriterHandle { tx: tx.clone() }, WriterThread { tx, join }))
}

impl WriterHandle {
    /// Runs `op` in the writer's next group and answers once that group is committed. An `Err`
    /// from `op` rolls back everything `op` did and nothing else.
    pub async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job = Box::new(Request {
            op: Some(op),
            result: None,
            reply,
        });
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

fn run(conn: Connection, mut rx: mpsc::Receiver<Msg>, batch_max: usize) {
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
        }
    }
    tracing::debug!("writer stopped");
}

fn commit_group(conn: &Connection, group: &mut Vec<Box<dyn Job>>) {
    let failed = match conn.execute_batch("BEGIN IMMEDIATE") {
        Err(e) => Some(StoreError::from(e)),
        Ok(()) => {
            let ran = match group.as_mut_slice() {
                // Alone in its group, a request needs no savepoint: the transaction is its own,
                // and rolling it back undoes that request and nothing else. This spares the
                // savepoint's page copies on the common path of a lightly loaded writer.
                [job] => Ok(job.run(conn)),
                jobs => jobs
                    .iter_mut()
                    .try_for_each(|job| run_in_savepoint(conn, job.as_mut()))
                    .map(|()| true),
            };
            let finished = match ran {
                Ok(true) => conn.execute_batch("COMMIT"),
                Ok(false) => conn.execute_batch("ROLLBACK"),
                Err(e) => Err(e),
            };
            if finished.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            finished.err().map(StoreError::from)
        }
    };
    for job in group.drain(..) {
        job.answer(failed.clone());
    }
}

/// Runs one job inside `SAVEPOINT request`, undoing it alone if it fails. A failure of the
/// savepoint statements themselves fails the whole group, with that error: the transaction is
/// then suspect.
fn run_in_savepoint(conn: &Connection, job: &mut dyn Job) -> Result<(), rusqlite::Error> {
    let step = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
    };
    step("SAVEPOINT request")?;
    if !job.run(conn) {
        step("ROLLBACK TO request")?;
    }
    step("RELEASE request")
}
