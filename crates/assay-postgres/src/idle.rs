//! Source sessions kept idle for short API work: checking a quality check's or a computed table's SQL with the
//! source's planner. Opening a session costs a TCP handshake, an authentication (SCRAM hashes thousands of
//! rounds on both ends) and a backend process on the source, which is far more than the `EXPLAIN` it is opened
//! for; under many edits that work lands on the cluster the scans read from.
//!
//! A session is handed out again only for exactly the same resolved parameters (host, port, user, password,
//! database, TLS settings), so secrets are still resolved before every use and a rotated password opens a new
//! session. Sessions idle longer than `max_idle`, or closed by the source, are dropped; at most `capacity` are
//! kept. Operations (profile, scan, export) never use these: they open their own sessions.

use crate::connect::ConnectParams;
use crate::error::PgError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The idle sessions of one server.
#[derive(Clone)]
pub struct IdleSessions {
    inner: Arc<Inner>,
}

struct Inner {
    capacity: usize,
    max_idle: Duration,
    slots: Mutex<Vec<Slot>>,
}

struct Slot {
    params: ConnectParams,
    since: Instant,
    client: tokio_postgres::Client,
}

/// A session lent out; it goes back to the idle set when dropped, unless the source closed it.
pub struct Lease {
    client: Option<tokio_postgres::Client>,
    params: ConnectParams,
    home: Arc<Inner>,
}

impl IdleSessions {
    pub fn new(capacity: usize, max_idle: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity,
                max_idle,
                slots: Mutex::new(Vec::new()),
            }),
        }
    }

    /// An open session for `params`: an idle one with the same parameters, or a new one.
    pub async fn lease(&self, params: &ConnectParams) -> Result<Lease, PgError> {
        let reused = {
            let mut slots = self.inner.lock();
            self.inner.expire(&mut slots);
            slots
                .iter()
                .position(|s| same(&s.params, params))
                .map(|i| slots.swap_remove(i).client)
        };
        let client = match reused {
            Some(c) => c,
            None => params.connect().await?,
        };
        Ok(Lease {
            client: Some(client),
            params: params.clone(),
            home: self.inner.clone(),
        })
    }

    /// How many sessions are idle now (after dropping the expired and closed ones).
    pub fn idle(&self) -> usize {
        let mut slots = self.inner.lock();
        self.inner.expire(&mut slots);
        slots.len()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expire(&self, slots: &mut Vec<Slot>) {
        slots.retain(|s| !s.client.is_closed() && s.since.elapsed() < self.max_idle);
    }
}

impl std::ops::Deref for Lease {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &tokio_postgres::Client {
        self.client
            .as_ref()
            .expect("a lease holds its client until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if client.is_closed() || self.home.capacity == 0 {
            return;
        }
        let mut slots = self.home.lock();
        self.home.expire(&mut slots);
        if slots.len() >= self.home.capacity {
            // the one idle longest goes
            if let Some(oldest) = (0..slots.len()).min_by_key(|&i| slots[i].since) {
                slots.swap_remove(oldest);
            }
        }
        slots.push(Slot {
            params: self.params.clone(),
            since: Instant::now(),
            client,
        });
    }
}

/// Whether a session opened with `a` is a session `b` would open.
fn same(a: &ConnectParams, b: &ConnectParams) -> bool {
    a.host == b.host
        && a.port == b.port
        && a.user == b.user
        && a.password == b.password
        && a.database == b.database
        && a.sslmode == b.sslmode
        && a.sslrootcert == b.sslrootcert
        && a.application_name == b.application_name
}
