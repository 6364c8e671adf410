//! Cooperative cancellation of a long kernel call.
//!
//! The caller (the Python binding, when Ctrl-C arrives) sets the call's [`Interrupt`];
//! the kernel looks at it at coarse points (per group of assets, stretch of dates,
//! window, date) and gives up with [`Error::Interrupted`]. A look is one relaxed atomic
//! load, so checks cost nothing measurable at that granularity. Kernels never block on
//! it and know nothing of signals or Python.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Error, Result};

/// A per-call cancellation flag, shared by reference with every worker of the call.
#[derive(Debug, Default)]
pub struct Interrupt {
    set: AtomicBool,
}

impl Interrupt {
    /// A flag that is not set.
    pub const fn new() -> Self {
        Self {
            set: AtomicBool::new(false),
        }
    }

    /// Asks the call to stop at its next check.
    pub fn set(&self) {
        // Relaxed is enough: the flag carries no data, and a worker that reads it a
        // little late only runs one more piece of work.
        self.set.store(true, Ordering::Relaxed);
    }

    /// Whether the call was asked to stop.
    #[inline(always)]
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// `Err(Error::Interrupted)` once the call was asked to stop.
    #[inline(always)]
    pub fn check(&self) -> Result<()> {
        if self.is_set() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// Runs `work` on the rayon pool while `watch` runs on this thread with a handle to
/// wait for it, e.g. in slices between looks for Ctrl-C, and returns what `watch`
/// returns once `work` is over. `work` may borrow from the caller: it is over before
/// this returns, even when `watch` unwinds. A pool thread is already running, so this
/// costs a queue push, not a thread spawn; on a pool thread `work` runs in place first.
/// `work` must not unwind (rayon aborts the process on a panic in a spawned job):
/// catch panics inside it.
pub fn on_pool<'a, R: Send + 'a, W>(
    work: impl FnOnce() -> R + Send + 'a,
    watch: impl FnOnce(&mut PoolJob<'a, R>) -> W,
) -> W {
    let (done, finished) = mpsc::sync_channel(1);
    // `work` and everything it borrows is consumed before the result is sent; what is
    // left of the job (the sender) owns its channel.
    let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let _ = done.send(work());
    });
    if rayon::current_thread_index().is_some() {
        // Already on a pool thread: waiting here for another one could deadlock the pool.
        job();
    } else {
        // SAFETY: rayon wants a 'static job, but this one borrows for 'a. It is over
        // before this function returns or unwinds: `job` below is only lent to `watch`
        // (so it cannot be leaked), and its drop blocks until the result was sent or
        // the job is gone (the channel disconnected), unless `wait` saw one of the two.
        let spawned: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
        rayon::spawn(spawned);
    }
    let mut job = PoolJob {
        finished,
        over: false,
        borrows: PhantomData,
    };
    watch(&mut job)
}

/// A job queued by [`on_pool`].
pub struct PoolJob<'a, R> {
    finished: mpsc::Receiver<R>,
    /// The job has sent its result (taken by `wait`) or is gone.
    over: bool,
    borrows: PhantomData<&'a ()>,
}

impl<R> PoolJob<'_, R> {
    /// `None` while the job runs on after `slice`; then `Some` of its result, or
    /// `Some(None)` if it ended without one (it unwound).
    pub fn wait(&mut self, slice: Duration) -> Option<Option<R>> {
        if self.over {
            return Some(None);
        }
        match self.finished.recv_timeout(slice) {
            Ok(result) => {
                self.over = true;
                Some(Some(result))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.over = true;
                Some(None)
            }
        }
    }
}

impl<R> Drop for PoolJob<'_, R> {
    fn drop(&mut self) {
        if !self.over {
            // A result or a disconnection: either way the job no longer borrows.
            let _ = self.finished.recv();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_job_borrows_from_its_caller_and_returns_its_result() {
        let values: Vec<u64> = (1..=100).collect();
        let result = on_pool(
            || values.iter().sum::<u64>(),
            |job| loop {
                if let Some(result) = job.wait(Duration::from_millis(1)) {
                    break result;
                }
            },
        );
        assert_eq!(result, Some(5050));
    }

    #[test]
    fn a_pool_job_started_on_a_pool_thread_runs_in_place() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let result = pool.install(|| on_pool(|| 7, |job| job.wait(Duration::ZERO)));
        assert_eq!(result, Some(Some(7)));
    }

    #[test]
    fn the_caller_returns_only_once_the_job_is_over() {
        let finished = AtomicBool::new(false);
        let work = || {
            std::thread::sleep(Duration::from_millis(50));
            finished.store(true, Ordering::SeqCst);
        };
        // `watch` gives up waiting at once, and even unwinds.
        on_pool(work, |_| ());
        assert!(finished.load(Ordering::SeqCst));
        finished.store(false, Ordering::SeqCst);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            on_pool(work, |_| panic!("the watcher fails"))
        }));
        assert!(unwound.is_err());
        assert!(finished.load(Ordering::SeqCst));
    }

    #[test]
    fn a_flag_reports_only_after_it_is_set() {
        let stop = Interrupt::new();
        assert!(!stop.is_set());
        assert_eq!(stop.check(), Ok(()));
        stop.set();
        assert!(stop.is_set());
        assert_eq!(stop.check(), Err(Error::Interrupted));
    }
}
