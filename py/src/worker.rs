//! A thread that owns a `!Send` state (the simulator and its endpoints) and
//! runs jobs on it.
//!
//! Why a thread: the simulator holds `Rc`s and boxed closures, so it cannot
//! move between threads, yet the GIL must be released while it runs; and
//! nodes are built on the stack before they are boxed (several MiB each), more
//! than a Python thread's stack can be trusted to hold. The worker has a large
//! stack of its own, the state never leaves it, and Python waits for each job
//! with the GIL released.
//!
//! A job that panics (a bug, never a bad argument: those are refused before)
//! poisons the state: later calls raise `RuntimeError` instead of running on a
//! half-updated simulation.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread::JoinHandle;

use pyo3::exceptions::PyRuntimeError;
use pyo3::PyResult;

type Job<S> = Box<dyn FnOnce(&mut Option<S>) + Send>;

/// Stack of worker threads: nodes are built on it before being boxed.
pub const STACK: usize = 256 << 20;

/// Runs `f` on a fresh thread with a large stack and returns its result
/// (a panic becomes `RuntimeError`).
pub fn on_big_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> PyResult<R> {
    let handle = std::thread::Builder::new()
        .name("phasecast-run".into())
        .stack_size(STACK)
        .spawn(f)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a worker thread: {e}")))?;
    handle
        .join()
        .map_err(|e| PyRuntimeError::new_err(format!("internal error: {}", panic_text(&*e))))
}

/// The text of a panic payload.
pub fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// A thread owning one `S`.
pub struct Worker<S: 'static> {
    tx: Option<mpsc::Sender<Job<S>>>,
    handle: Option<JoinHandle<()>>,
}

impl<S: 'static> Worker<S> {
    /// Starts the thread and builds the state on it with `init`; an `Err`
    /// (or a panic) from `init` is returned as `Err(text)`.
    pub fn spawn(
        init: impl FnOnce() -> Result<S, String> + Send + 'static,
    ) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel::<Job<S>>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
        let handle = std::thread::Builder::new()
            .name("phasecast-sim".into())
            .stack_size(STACK)
            .spawn(move || {
                let mut state = match catch_unwind(AssertUnwindSafe(init)) {
                    Ok(Ok(s)) => Some(s),
                    Ok(Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                    Err(p) => {
                        let _ = ready_tx.send(Err(format!("internal error: {}", panic_text(&*p))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .map_err(|e| format!("cannot start the simulation thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Worker {
                tx: Some(tx),
                handle: Some(handle),
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err("the simulation thread stopped while starting".into())
            }
        }
    }

    /// Runs `f` on the state in the worker thread and waits for its result.
    /// Call it with the GIL released for anything long.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> PyResult<R> {
        let (rtx, rrx) = mpsc::sync_channel::<Result<R, String>>(1);
        let job: Job<S> = Box::new(move |state: &mut Option<S>| {
            let Some(s) = state.as_mut() else {
                let _ = rtx.send(Err(
                    "this simulation is unusable after an earlier internal error".into(),
                ));
                return;
            };
            match catch_unwind(AssertUnwindSafe(|| f(s))) {
                Ok(r) => {
                    let _ = rtx.send(Ok(r));
                }
                Err(p) => {
                    // Poison: the state may be half updated.
                    *state = None;
                    let _ = rtx.send(Err(format!("internal error: {}", panic_text(&*p))));
                }
            }
        });
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("the simulation thread is gone"))?;
        tx.send(job)
            .map_err(|_| PyRuntimeError::new_err("the simulation thread is gone"))?;
        match rrx.recv() {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(PyRuntimeError::new_err(e)),
            Err(_) => Err(PyRuntimeError::new_err("the simulation thread is gone")),
        }
    }
}

impl<S: 'static> Drop for Worker<S> {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current job.
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
