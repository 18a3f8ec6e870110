//! Test-only helpers: a throwaway PostgreSQL cluster (scram-sha-256, TLS with a test CA, a pg_hba with a reject
//! line, a no-entry case and an SSL-only role, `track_commit_timestamp = on`) and an OpenBao dev server with
//! userpass and AppRole logins, one of each per test binary, stopped when the binary exits; and a webhook
//! receiver that records requests and can fail, hang or refuse; and an SMTP server (aiosmtpd) requiring STARTTLS.

pub mod bao;
pub mod pg;
pub mod receiver;
pub mod smtp;

pub use assay_store::cluster::free_port;
pub use bao::TestBao;
pub use pg::TestPg;
pub use receiver::Receiver;
pub use smtp::TestSmtp;

use std::sync::Mutex;

static CLEANUPS: Mutex<Vec<Box<dyn FnOnce() + Send>>> = Mutex::new(Vec::new());

/// Runs `f` when the process exits (the test harness ends with `exit`, which runs `atexit` handlers).
pub(crate) fn at_exit(f: impl FnOnce() + Send + 'static) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        extern "C" fn run_cleanups() {
            if let Ok(mut list) = CLEANUPS.lock() {
                for f in list.drain(..) {
                    f();
                }
            }
        }
        // SAFETY: registering a plain `extern "C" fn` with no arguments is what atexit expects.
        unsafe {
            libc::atexit(run_cleanups);
        }
    });
    CLEANUPS.lock().expect("cleanup list").push(Box::new(f));
}

/// A unique suffix for names made by tests.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The workspace root (for finding `.ci/venv`).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .expect("crates/assay-testkit lives two levels down")
        .to_path_buf()
}
