//! The sequencer: one thread owns the [`Registry`] and commits what many writers submit
//! in groups, so that concurrent writers share one round of fsyncs.
//!
//! Writers call [`Sequencer::submit`] from any thread (or task) without blocking: the
//! expensive checks (schema, signatures, payloads) run on a pool of checker threads,
//! one per core — never more, however many writers there are, so the sequencer thread
//! always gets its share of the CPU. A checker takes its share of what is waiting (up
//! to [`CHECK_BATCH`] submissions), checks their signatures as one batch, and queues
//! them together. The sequencer thread takes everything queued — up to [`MAX_GROUP`]
//! operations — as one group ([`Registry::sequence`]) and answers each writer with its
//! receipt or refusal once the group is durable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::index::Index;
use crate::node::{
    Committed, DEFAULT_CLOCK_WINDOW, Prepared, Receipt, Registry, RegistryError, SYNC_INTERVAL,
};
use crate::op::{OpError, Submission};

/// A group takes no more once it holds this many operations.
pub const MAX_GROUP: usize = 4096;

/// The most submissions one checker checks together: the batch signature check costs
/// about a third of checking one by one from a few dozen signatures up.
pub const CHECK_BATCH: usize = 64;

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
    /// For operations checked already ([`Sequencer::submit_checked`]).
    queue: mpsc::Sender<Vec<Job>>,
    /// Submissions not yet through a checker.
    checking: Arc<AtomicUsize>,
    index: Index,
}

fn stopped() -> SubmitError {
    SubmitError::Failed("the sequencer has stopped".into())
}

/// A checker thread: prepares submissions and hands them to the sequencer, until every
/// [`Sequencer`] handle is gone. Of the submissions waiting it takes its share among
/// `checkers`, so that a burst is checked on every core.
fn check(
    checks: &Mutex<mpsc::Receiver<Check>>,
    queue: &mpsc::Sender<Vec<Job>>,
    checking: &AtomicUsize,
    checkers: usize,
) {
    loop {
        let mut taken = Vec::new();
        {
            let Ok(receiver) = checks.lock() else { return };
            let Ok(first) = receiver.recv() else { return };
            let share = checking
                .load(Ordering::Acquire)
                .div_ceil(checkers)
                .clamp(1, CHECK_BATCH);
            taken.push(first);
            while taken.len() < share {
                match receiver.try_recv() {
                    Ok(next) => taken.push(next),
                    Err(_) => break,
                }
            }
        }
        let (submissions, replies): (Vec<_>, Vec<_>) = taken
            .into_iter()
            .map(|Check { submission, reply }| (submission, reply))
            .unzip();
        let count = submissions.len();
        let prepared = Prepared::all(
            &submissions,
            OffsetDateTime::now_utc(),
            DEFAULT_CLOCK_WINDOW,
        );
        let jobs = prepared
            .into_iter()
            .zip(replies)
            .map(|(prepared, reply)| Job { prepared, reply })
            .collect();
        if let Err(mpsc::SendError(jobs)) = queue.send(jobs) {
            for job in jobs {
                let _ = job.reply.send(Err(stopped()));
            }
        }
        checking.fetch_sub(count, Ordering::AcqRel);
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
    /// Starts the sequencer thread; fails only when the OS cannot start a thread.
    pub fn start(registry: Registry) -> std::io::Result<(Self, SequencerThread)> {
        Self::start_with_hook(registry, |_| {})
    }

    /// Starts the sequencer thread; after each durable commit, before any writer is
    /// answered, `on_commit` gets the index keys the commit changed (`i/<identifier>`,
    /// `p/<prefix>`, `d/<did>`, …), so that caches drop what they say. Fails only when
    /// the OS cannot start the sequencer thread (the registry is then dropped, which
    /// syncs it).
    pub fn start_with_hook(
        registry: Registry,
        on_commit: impl Fn(&[String]) + Send + 'static,
    ) -> std::io::Result<(Self, SequencerThread)> {
        let (queue, jobs) = mpsc::channel::<Vec<Job>>();
        let (checks, pending) = mpsc::channel::<Check>();
        let pending = Arc::new(Mutex::new(pending));
        let checking = Arc::new(AtomicUsize::new(0));
        let checkers = std::thread::available_parallelism().map_or(2, usize::from);
        for n in 0..checkers {
            let (pending, queue) = (Arc::clone(&pending), queue.clone());
            let checking = Arc::clone(&checking);
            // A checker that cannot start leaves the others; with none, submissions
            // are answered "stopped".
            let _ = std::thread::Builder::new()
                .name(format!("medid-check-{n}"))
                .spawn(move || check(&pending, &queue, &checking, checkers));
        }
        let index = registry.index().clone();
        let thread = std::thread::Builder::new()
            .name("medid-sequencer".into())
            .spawn({
                let checking = Arc::clone(&checking);
                move || run(registry, jobs, &checking, on_commit)
            })?;
        Ok((
            Self {
                checks,
                queue,
                checking,
                index,
            },
            SequencerThread { thread },
        ))
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
        self.checking.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(check)) = self.checks.send(check) {
            self.checking.fetch_sub(1, Ordering::AcqRel);
            let _ = check.reply.send(Err(stopped()));
        }
        answer
    }

    /// Queues operations checked already (see `event::prepare_capture`) for sequencing
    /// together, without blocking; each receiver gets its operation's answer once it is
    /// durable (or refused: the registry's state may have changed since the check).
    pub fn submit_checked(&self, prepared: Vec<Prepared>) -> Vec<oneshot::Receiver<Answer>> {
        let (jobs, answers): (Vec<_>, Vec<_>) = prepared
            .into_iter()
            .map(|prepared| {
                let (reply, answer) = oneshot::channel();
                let job = Job {
                    prepared: Ok(prepared),
                    reply,
                };
                (job, answer)
            })
            .unzip();
        if let Err(mpsc::SendError(jobs)) = self.queue.send(jobs) {
            for job in jobs {
                let _ = job.reply.send(Err(stopped()));
            }
        }
        answers
    }

    /// [`Sequencer::submit`] and wait for the answer (not from inside an async task).
    pub fn submit_blocking(&self, submission: &Submission) -> Answer {
        self.submit(submission)
            .blocking_recv()
            .unwrap_or_else(|_| Err(stopped()))
    }
}

/// How long a group waits for submissions still being checked to join it.
const LINGER: Duration = Duration::from_millis(2);

/// The sequencer's loop: takes everything queued as one group — waiting up to
/// [`LINGER`] for submissions still in a checker, since every commit costs an fsync
/// however small — commits it, answers its writers. Syncs the ledger when due, and
/// whenever no writer has come for [`SYNC_INTERVAL`].
fn run(
    mut registry: Registry,
    jobs: mpsc::Receiver<Vec<Job>>,
    checking: &AtomicUsize,
    on_commit: impl Fn(&[String]),
) -> Registry {
    loop {
        let mut group = match jobs.recv_timeout(SYNC_INTERVAL) {
            Ok(jobs) => jobs,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if registry.sync_when_due().is_err() {
                    break;
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let deadline = Instant::now() + LINGER;
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(more) => group.extend(more),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if checking.load(Ordering::Acquire) == 0 || left.is_zero() {
                        break;
                    }
                    match jobs.recv_timeout(left) {
                        Ok(more) => group.extend(more),
                        Err(_) => break,
                    }
                }
            }
        }
        let (prepared, replies): (Vec<_>, Vec<_>) =
            group.into_iter().map(|j| (j.prepared, j.reply)).unzip();
        match registry.sequence_reporting(prepared) {
            Ok(Committed { answers, changed }) => {
                if !changed.is_empty() {
                    on_commit(&changed);
                }
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer.map_err(SubmitError::Refused));
                }
                // A ledger that cannot be synced cannot take more: stop, and let the
                // next start recover from the write-ahead log.
                if registry.sync_when_due().is_err() {
                    break;
                }
            }
            Err(error) => {
                let message = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(SubmitError::Failed(message.clone())));
                }
                if matches!(error, RegistryError::Log(_) | RegistryError::Index(_)) {
                    // After a failed write the ledger or the index is in an unknown
                    // state until reopened; stop.
                    break;
                }
            }
        }
    }
    registry
}
