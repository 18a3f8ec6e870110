//! How many source sessions this process holds open, for the operator's metrics. A session counts from its
//! connection's start until its connection task ends (the client dropped, the server closed it, or an error).

use std::sync::atomic::{AtomicI64, Ordering};

static OPEN: AtomicI64 = AtomicI64::new(0);

/// The number of source sessions open in this process now.
pub fn open_sessions() -> i64 {
    OPEN.load(Ordering::Relaxed)
}

/// Counts one session while it lives; held by the task that drives the session's connection.
pub(crate) struct Counted(());

impl Counted {
    pub(crate) fn new() -> Counted {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Counted(())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}
