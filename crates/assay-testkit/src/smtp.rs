//! A real SMTP server for e-mail tests: aiosmtpd (PyPI, installed into `.ci/venv` by the test script) on a free
//! loopback port, requiring STARTTLS (with a certificate of a test CA) and then a login with the user and
//! password given, storing every message it accepts in a Maildir that tests read. Killed when the test binary
//! exits.

/// The server: aiosmtpd's controller with a Mailbox handler and an authenticator for one login.
const SERVER: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
port, certs, maildir, user, password = sys.argv[1:]
tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(certs + "/server.crt", certs + "/server.key")
def login(server, session, envelope, mechanism, data):
    return AuthResult(success=data.login.decode() == user and data.password.decode() == password)
Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), tls_context=tls, require_starttls=True,
           authenticator=login, auth_required=True).start()
while True:
    time.sleep(3600)
"#;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestSmtp {
    _child: std::process::Child,
    pub port: u16,
    /// PEM of the CA that signed the server's certificate.
    pub ca_pem: String,
    maildir: PathBuf,
}

impl TestSmtp {
    /// A server of its own for the caller, taking mail from `user` with `password`.
    pub fn start(user: &str, password: &str) -> TestSmtp {
        let venv = crate::workspace_root().join(".ci/venv/bin");
        let bin = venv.join("python");
        assert!(
            venv.join("aiosmtpd").exists(),
            "{} is missing: run scripts/test, which installs aiosmtpd into .ci/venv",
            venv.join("aiosmtpd").display()
        );
        let dir = std::env::temp_dir().join(crate::unique("assay-test-smtp"));
        std::fs::create_dir_all(&dir).unwrap();
        crate::pg::make_certificates(&dir).expect("test certificates");
        let maildir = dir.join("maildir");
        let port = crate::free_port().expect("free port");
        let child = Command::new(bin)
            .args(["-c", SERVER, &port.to_string()])
            .arg(&dir)
            .arg(&maildir)
            .args([user, password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn aiosmtpd");
        let pid = child.id() as i32;
        crate::at_exit(move || {
            // SAFETY: sending SIGKILL to our own child process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        });
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        TestSmtp {
            _child: child,
            port,
            ca_pem: std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
            maildir,
        }
    }

    /// Every message delivered so far, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(rd) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in rd.flatten() {
                    if let Ok(t) = std::fs::read_to_string(e.path()) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// Waits until `n` messages have arrived (at most `secs` seconds).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<String> {
        let t0 = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{} of {n} e-mails arrived within {secs} s",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
