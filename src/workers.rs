//! Work that must not occupy the async workers (scans, rendering large responses, job-file
//! I/O) runs on tokio's blocking pool through [`run`], at a lowered priority
//! (`query.worker_nice`), so the threads serving `/status`, `/metrics` and metadata get the
//! CPU first when heavy queries saturate the cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, Ordering};

/// The nice value blocking-pool threads take (set once from the configuration).
static NICE: AtomicI32 = AtomicI32::new(0);

thread_local! {
    static APPLIED: Cell<Option<i32>> = const { Cell::new(None) };
}

/// Sets the nice value that threads running [`run`] work take (0 leaves them alone).
pub fn set_nice(nice: i32) {
    NICE.store(nice.clamp(0, 19), Ordering::Relaxed);
}

/// Lowers the calling thread's priority to the configured nice value, once per thread.
/// Threads it spawns afterwards (a scan's workers) inherit it.
fn lower_priority() {
    let nice = NICE.load(Ordering::Relaxed);
    if APPLIED.with(|a| a.get()) == Some(nice) {
        return;
    }
    APPLIED.with(|a| a.set(Some(nice)));
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid takes no arguments; setpriority(PRIO_PROCESS, tid, n) changes only
        // this thread's nice value (Linux treats the id as a thread id).
        let r = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice)
        };
        if r != 0 {
            tracing::debug!("cannot set the worker thread's nice value to {nice}");
        }
    }
}

/// Starts `f` on the blocking pool at the workers' priority; it runs to the end even if
/// nobody awaits the handle.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(move || {
        lower_priority();
        f()
    })
}

/// Runs `f` on the blocking pool at the workers' priority and awaits its value. A panic in
/// `f` becomes `None` (logged by the panic hook).
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    spawn(f).await.ok()
}
