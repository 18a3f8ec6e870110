//! The harness of the binary's tests: `assay serve` as a child process, the `assay` client with its own
//! configuration home, and the sample shop database with the seed's roles.

#![allow(dead_code)]

pub mod api;
pub mod meta;

use assay_testkit::TestPg;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_assay");

pub struct Server {
    pub child: Child,
    pub url: String,
    pub token: Option<String>,
    /// Every line the server printed so far, so tests can wait for what it logs.
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    // the child is waited for in Drop, which also runs when a test panics
    #[allow(clippy::zombie_processes)]
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn assay serve");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = {
                let l = lines.lock().unwrap();
                let token = l
                    .iter()
                    .find_map(|x| x.trim().strip_prefix("API token: ").map(str::to_string));
                l.iter()
                    .find_map(|x| x.strip_prefix("Assay is listening on "))
                    .map(|rest| (rest.split_whitespace().next().unwrap().to_string(), token))
            };
            if let Some((url, token)) = found {
                return Server {
                    child,
                    url,
                    token,
                    lines,
                };
            }
            assert!(Instant::now() < deadline, "the server prints its address");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server printed a line containing `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// Every line the server printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Kills the server without warning.
    pub fn sigkill(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// SIGTERM; the server must stop cleanly.
    pub fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "assay serve stops cleanly on SIGTERM");
    }

    /// Ctrl-C; returns the exit status.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("assay serve did not stop on SIGINT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(assay_testkit::unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `assay ARGS` with the config home `home`.
pub fn assay(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("ASSAY_CONFIG_HOME", home)
        .env_remove("ASSAY_URL")
        .env_remove("ASSAY_TOKEN")
        .output()
        .expect("run assay")
}

pub fn ok(home: &Path, args: &[&str]) -> String {
    let out = assay(home, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "assay {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

pub fn id_after(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .trim()
        .to_string()
}

pub async fn shop(pg: &TestPg) -> (String, String, String) {
    let db = pg.create_database("clishop").await;
    let reader = assay_testkit::unique("clireader");
    let writer = assay_testkit::unique("cliwriter");
    pg.create_role(&reader, "readerpw").await;
    pg.create_role(&writer, "writerpw").await;
    pg.superuser(&db)
        .await
        .batch_execute(&format!(
            "CREATE SCHEMA sales; CREATE SCHEMA enrich;
             CREATE TABLE sales.orders (id bigserial PRIMARY KEY, total numeric);
             CREATE TABLE sales.customers (id int PRIMARY KEY, email text);
             INSERT INTO sales.orders (total) SELECT g FROM generate_series(1, 50) g;
             INSERT INTO sales.customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 50) g;
             GRANT USAGE ON SCHEMA sales TO {reader};
             GRANT SELECT ON ALL TABLES IN SCHEMA sales TO {reader};
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA sales TO {reader};
             ALTER DEFAULT PRIVILEGES IN SCHEMA sales GRANT SELECT ON TABLES TO {reader};
             GRANT USAGE, CREATE ON SCHEMA enrich TO {writer};
             ALTER DEFAULT PRIVILEGES IN SCHEMA enrich GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer};"
        ))
        .await
        .unwrap();
    (db, reader, writer)
}
