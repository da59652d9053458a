//! Fork-join for the GEMM's parallel loops, on rayon's pool.
//!
//! A loop is cut into one item per thread. The calling thread starts on them at once and
//! `threads - 1` pool threads join in as they wake up, each taking the next unclaimed item; the
//! caller spin-waits for the items in flight, then returns. So a pool thread that wakes late
//! (on a virtual machine that can take from microseconds to milliseconds) leaves its item to
//! the caller instead of making it wait, and a small product never pays for a sleeping caller
//! to be woken. (Cutting loops finer, four items per thread, ran 7% slower at 1024^3 on two
//! threads: every item of a column split packs A again.)

use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Runs `f` on every item, on the calling thread and up to `threads - 1` pool threads, and
/// returns when all are done. A panic in `f` is carried to the caller.
pub(super) fn for_each<I: Send>(
    threads: usize,
    items: impl IntoIterator<Item = I>,
    f: impl Fn(I) + Sync,
) {
    let slots: Vec<Mutex<Option<I>>> = items.into_iter().map(|i| Mutex::new(Some(i))).collect();
    let count = slots.len();
    if threads <= 1 || count <= 1 {
        for slot in slots {
            if let Some(item) = slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
                f(item);
            }
        }
        return;
    }
    let run = |i: usize| {
        let item = slots[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        f(item.expect("every item is claimed once"));
    };
    let run: *const (dyn Fn(usize) + Sync + '_) = &run;
    // SAFETY: only the lifetime bound changes, so that pool threads may hold the pointer. It
    // is dereferenced only for an item claimed below `count`, and this function returns only
    // once every such item is done, so never after `run` is gone; a pool thread that wakes
    // later finds no item and leaves without touching it.
    let run = unsafe {
        std::mem::transmute::<
            *const (dyn Fn(usize) + Sync + '_),
            *const (dyn Fn(usize) + Sync + 'static),
        >(run)
    };
    let shared = Arc::new(Loop {
        run,
        count,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panic: Mutex::new(None),
    });
    for _ in 1..threads.min(count) {
        let shared = Arc::clone(&shared);
        rayon::spawn(move || shared.work());
    }
    shared.work();
    let mut spins = 0u32;
    while shared.done.load(Ordering::Acquire) < count {
        if spins < 1 << 12 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    let panic = shared
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(panic) = panic {
        resume_unwind(panic);
    }
}

/// The state of one parallel loop, shared by its threads.
struct Loop {
    /// Runs item `i`; valid while `done < count` (see `for_each`).
    run: *const (dyn Fn(usize) + Sync),
    count: usize,
    /// The next unclaimed item.
    next: AtomicUsize,
    /// Items finished (or panicked).
    done: AtomicUsize,
    /// The first panic of an item, for the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `run` points to a `Sync` closure, called from any thread only under the protocol of
// `for_each`; every other field is `Send` and `Sync`.
unsafe impl Send for Loop {}
// SAFETY: as above.
unsafe impl Sync for Loop {}

impl Loop {
    /// Claims and runs items until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count {
                return;
            }
            // SAFETY: item i < count is claimed and not done, so `run` is alive.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*self.run)(i) }));
            if let Err(panic) = result {
                let mut first = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert(panic);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_on_any_thread_count() {
        for threads in 1..=4 {
            for count in [0, 1, 2, 7, 64] {
                let hits: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
                for_each(threads, 0..count, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }

    #[test]
    fn a_panicking_item_reaches_the_caller_after_the_others() {
        let done = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            for_each(2, 0..8, |i| {
                assert_ne!(i, 3, "item 3 fails");
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 7);
    }
}
