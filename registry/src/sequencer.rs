//! The sequencer: one thread owns the [`Registry`] and commits what many writers submit
//! in groups, so that concurrent writers share one round of fsyncs.
//!
//! Writers call [`Sequencer::submit`] from any thread (or task) without blocking: the
//! expensive checks (schema, signatures, payloads) run on a pool of checker threads,
//! one per core — never more, however many writers there are, so the sequencer thread
//! always gets its share of the CPU — then the prepared operation joins the queue. The sequencer thread takes everything queued — up to
//! [`MAX_GROUP`] operations — as one batch ([`Registry::sequence`]) and answers each
//! writer with its receipt or refusal once the batch is durable.

use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::index::Index;
use crate::node::{
    Committed, DEFAULT_CLOCK_WINDOW, Prepared, Receipt, Registry, RegistryError, Staged,
};
use crate::op::{OpError, Submission};
use crate::state::Changes;

/// The most operations committed together.
pub const MAX_GROUP: usize = 4096;

/// The answer a writer waits for.
pub type Answer = Result<Receipt, SubmitError>;

/// Why a submission got no receipt.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The operation was refused; nothing was written.
    #[error(transparent)]
    Refused(#[from] OpError),
    /// The node could not write; the operation may or may not be in the ledger, and a
    /// resubmission of the same document is refused as a replay if it is.
    #[error("the node failed to write: {0}")]
    Failed(String),
}

struct Job {
    prepared: Result<Prepared, OpError>,
    reply: oneshot::Sender<Answer>,
}

/// A submission waiting for a checker thread.
struct Check {
    submission: Submission,
    reply: oneshot::Sender<Answer>,
}

/// A handle for submitting operations; clone it freely.
#[derive(Clone)]
pub struct Sequencer {
    checks: mpsc::Sender<Check>,
    index: Index,
}

fn stopped() -> SubmitError {
    SubmitError::Failed("the sequencer has stopped".into())
}

/// A checker thread: prepares submissions and hands them to the sequencer, until every
/// [`Sequencer`] handle is gone.
fn check(checks: &Mutex<mpsc::Receiver<Check>>, queue: &mpsc::Sender<Job>) {
    loop {
        let next = match checks.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(Check { submission, reply }) = next else {
            return;
        };
        let prepared = Prepared::new(&submission, OffsetDateTime::now_utc(), DEFAULT_CLOCK_WINDOW);
        if let Err(mpsc::SendError(job)) = queue.send(Job { prepared, reply }) {
            let _ = job.reply.send(Err(stopped()));
        }
    }
}

/// The sequencer thread; joining it gives the registry back.
pub struct SequencerThread {
    thread: JoinHandle<Registry>,
}

impl SequencerThread {
    /// Waits for the sequencer to stop (every [`Sequencer`] handle dropped).
    pub fn join(self) -> Option<Registry> {
        self.thread.join().ok()
    }
}

impl Sequencer {
    /// Starts the sequencer thread.
    pub fn start(registry: Registry) -> (Self, SequencerThread) {
        Self::start_with_hook(registry, |_| {})
    }

    /// Starts the sequencer thread; after each durable commit, before any writer is
    /// answered, `on_commit` gets the index keys the commit changed (`i/<identifier>`,
    /// `p/<prefix>`, `d/<did>`, …), so that caches drop what they say.
    pub fn start_with_hook(
        registry: Registry,
        on_commit: impl Fn(&[String]) + Send + 'static,
    ) -> (Self, SequencerThread) {
        let (queue, jobs) = mpsc::channel::<Job>();
        let (checks, pending) = mpsc::channel::<Check>();
        let pending = Arc::new(Mutex::new(pending));
        let checkers = std::thread::available_parallelism().map_or(2, usize::from);
        for n in 0..checkers {
            let (pending, queue) = (Arc::clone(&pending), queue.clone());
            // A checker that cannot start leaves the others; with none, submissions
            // are answered "stopped".
            let _ = std::thread::Builder::new()
                .name(format!("medid-check-{n}"))
                .spawn(move || check(&pending, &queue));
        }
        drop(queue);
        let index = registry.index().clone();
        let thread = std::thread::Builder::new()
            .name("medid-sequencer".into())
            .spawn(move || run(registry, jobs, on_commit));
        // Spawning a thread fails only when the OS is out of resources.
        #[allow(clippy::expect_used)]
        let thread = thread.expect("cannot start the sequencer thread");
        (Self { checks, index }, SequencerThread { thread })
    }

    /// The index, for reads.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Queues a submission for checking and sequencing, without blocking; the receiver
    /// gets the answer once the operation is durable (or refused).
    pub fn submit(&self, submission: &Submission) -> oneshot::Receiver<Answer> {
        let (reply, answer) = oneshot::channel();
        let check = Check {
            submission: submission.clone(),
            reply,
        };
        if let Err(mpsc::SendError(check)) = self.checks.send(check) {
            let _ = check.reply.send(Err(stopped()));
        }
        answer
    }

    /// [`Sequencer::submit`] and wait for the answer (not from inside an async task).
    pub fn submit_blocking(&self, submission: &Submission) -> Answer {
        self.submit(submission)
            .blocking_recv()
            .unwrap_or_else(|_| Err(stopped()))
    }
}

/// A batch durable in the ledger, on its way to the index thread with the writers
/// waiting for it.
struct Indexing {
    staged: Staged,
    replies: Vec<oneshot::Sender<Answer>>,
}

/// The sequencer's loop: checks each group against the state and appends it to the
/// ledger, then hands it to the index thread, which writes the index and answers the
/// writers. The two run side by side: while one group's index is written and flushed,
/// the next group is checked and logged. The next group sees the state through the
/// changes of the one in flight (`pending`); handing a group over waits until the
/// index thread has finished the one before, so at most one is ever in flight.
fn run(
    mut registry: Registry,
    jobs: mpsc::Receiver<Job>,
    on_commit: impl Fn(&[String]) + Send + 'static,
) -> Registry {
    let (to_index, batches) = mpsc::sync_channel::<Indexing>(0);
    let index = registry.index().clone();
    let indexer = std::thread::Builder::new()
        .name("medid-indexer".into())
        .spawn(move || write_index(&index, &batches, on_commit));
    // Spawning a thread fails only when the OS is out of resources.
    #[allow(clippy::expect_used)]
    let indexer = indexer.expect("cannot start the index thread");
    let mut pending: Option<Arc<Changes>> = None;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (prepared, replies): (Vec<_>, Vec<_>) =
            group.into_iter().map(|j| (j.prepared, j.reply)).unzip();
        match registry.stage(prepared, pending.as_deref()) {
            Ok(staged) => {
                let changes = Arc::clone(&staged.changes);
                if let Err(mpsc::SendError(lost)) = to_index.send(Indexing { staged, replies }) {
                    // The index thread stopped on a failed write: the index is behind
                    // the ledger until the next start replays it. Stop here too.
                    fail(lost.replies, "the index could not be written");
                    break;
                }
                pending = Some(changes);
                registry.tidy();
            }
            Err(error) => {
                fail(replies, &error.to_string());
                if matches!(error, RegistryError::Log(_)) {
                    // The ledger refuses further appends after a failed write; stop.
                    break;
                }
            }
        }
    }
    drop(to_index);
    let _ = indexer.join();
    registry
}

/// The index thread: writes each staged group into the index, tells `on_commit` what
/// changed, answers the writers. Stops at the first failed write.
fn write_index(index: &Index, batches: &mpsc::Receiver<Indexing>, on_commit: impl Fn(&[String])) {
    while let Ok(Indexing { staged, replies }) = batches.recv() {
        if let Err(error) = staged.index(index) {
            fail(replies, &error.to_string());
            return;
        }
        let Committed { answers, changed } = staged.committed;
        if !changed.is_empty() {
            on_commit(&changed);
        }
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer.map_err(SubmitError::Refused));
        }
    }
}

fn fail(replies: Vec<oneshot::Sender<Answer>>, message: &str) {
    for reply in replies {
        let _ = reply.send(Err(SubmitError::Failed(message.to_owned())));
    }
}
