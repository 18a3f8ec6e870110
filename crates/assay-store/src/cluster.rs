//! A PostgreSQL cluster that Assay creates and runs itself from the local server binaries (`initdb`, `pg_ctl`,
//! found on `PATH` or under `/usr/lib/postgresql/*/bin`). When Assay runs as root the cluster runs as an
//! unprivileged OS user (`postgres`, else a system user `assay` created on demand), because PostgreSQL refuses
//! to run as root. Used for the embedded metadata store, the demo's sample source and the tests.

use crate::error::StoreError;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// How to create a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The cluster lives in `dir/data`; its log in `dir/server.log`.
    pub dir: PathBuf,
    /// Password of the superuser `postgres` (scram-sha-256).
    pub superuser_password: String,
    /// pg_hba.conf lines; `None` gives local and loopback access with scram-sha-256 for every role.
    pub hba: Option<Vec<String>>,
    /// Extra postgresql.conf lines.
    pub extra_conf: Vec<String>,
}

/// A running (or stopped) cluster on a loopback port.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    pub bin: PathBuf,
    pub os_user: Option<String>,
    pub superuser_password: String,
}

/// The directory holding `initdb` and `pg_ctl`.
pub fn find_bin_dir() -> Result<PathBuf, StoreError> {
    if let Ok(dir) = std::env::var("ASSAY_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    candidates.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    if let Some(best) = candidates
        .into_iter()
        .rev()
        .find(|p| p.join("pg_ctl").exists())
    {
        return Ok(best);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                return Ok(dir);
            }
        }
    }
    Err(StoreError::Cluster(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql; install the \
         `postgresql` package, set ASSAY_PG_BIN, or give --metadata-url"
            .into(),
    ))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, StoreError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| StoreError::Cluster(format!("no free port: {e}")))?;
    Ok(l.local_addr()
        .map_err(|e| StoreError::Cluster(e.to_string()))?
        .port())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, StoreError> {
    let out = cmd
        .output()
        .map_err(|e| StoreError::Cluster(format!("{what}: cannot run: {e}")))?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(StoreError::Cluster(format!(
            "{what} failed: {}",
            text.trim()
        )));
    }
    Ok(out)
}

/// The unprivileged OS user to run PostgreSQL as, when running as root; created when missing.
fn service_user() -> Result<Option<String>, StoreError> {
    if !is_root() {
        return Ok(None);
    }
    for user in ["postgres", "assay"] {
        if Command::new("id")
            .arg("-u")
            .arg(user)
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Ok(Some(user.to_string()));
        }
    }
    run(
        Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "assay",
        ]),
        "creating the OS user `assay` for PostgreSQL",
    )?;
    Ok(Some("assay".to_string()))
}

impl Cluster {
    /// Opens the cluster in `opts.dir`, creating it with `initdb` when it does not exist yet.
    pub fn open_or_init(opts: &ClusterOptions) -> Result<Cluster, StoreError> {
        let bin = find_bin_dir()?;
        let os_user = service_user()?;
        let data = opts.dir.join("data");
        std::fs::create_dir_all(&opts.dir).map_err(|e| {
            StoreError::Cluster(format!("cannot create {}: {e}", opts.dir.display()))
        })?;
        let dir =
            std::fs::canonicalize(&opts.dir).map_err(|e| StoreError::Cluster(e.to_string()))?;
        if data.join("PG_VERSION").exists() {
            let port = read_port(&dir.join("data").join("postgresql.conf"))?;
            return Ok(Cluster {
                dir,
                port,
                bin,
                os_user,
                superuser_password: opts.superuser_password.clone(),
            });
        }
        let port = free_port()?;
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", opts.superuser_password))
            .map_err(|e| StoreError::Cluster(format!("cannot write {}: {e}", pwfile.display())))?;
        set_private(&pwfile);
        let cluster = Cluster {
            dir: dir.clone(),
            port,
            bin,
            os_user,
            superuser_password: opts.superuser_password.clone(),
        };
        cluster.hand_over(&dir)?;
        let initdb = cluster.command("initdb", |c| {
            c.arg("-D")
                .arg(dir.join("data"))
                .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8"])
                .arg("--locale=C.UTF-8")
                .arg(format!("--pwfile={}", pwfile.display()));
        });
        let result = run(&mut { initdb }, "initdb");
        let _ = std::fs::remove_file(&pwfile);
        result?;
        let mut conf = vec![
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("port = {port}"),
            format!("unix_socket_directories = '{}'", dir.display()),
            "password_encryption = 'scram-sha-256'".to_string(),
        ];
        conf.extend(opts.extra_conf.iter().cloned());
        append(&dir.join("data").join("postgresql.conf"), &conf.join("\n"))?;
        let hba = opts.hba.clone().unwrap_or_else(|| {
            vec![
                "local all all scram-sha-256".to_string(),
                "host all all 127.0.0.1/32 scram-sha-256".to_string(),
            ]
        });
        std::fs::write(dir.join("data").join("pg_hba.conf"), hba.join("\n") + "\n")
            .map_err(|e| StoreError::Cluster(format!("cannot write pg_hba.conf: {e}")))?;
        cluster.hand_over(&dir)?;
        Ok(cluster)
    }

    /// Starts the cluster unless it already runs; waits until it accepts connections.
    pub fn start(&self) -> Result<(), StoreError> {
        if self.is_running() {
            return Ok(());
        }
        let log = self.dir.join("server.log");
        let dir = self.dir.join("data");
        run(
            &mut self.command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&dir)
                    .arg("-l")
                    .arg(&log)
                    .args(["-w", "-t", "60", "start"]);
            }),
            "pg_ctl start",
        )
        .map_err(|e| StoreError::Cluster(format!("{e} (see {})", log.display())))?;
        Ok(())
    }

    /// Stops the cluster (fast shutdown). Stopping a stopped cluster is fine.
    pub fn stop(&self) -> Result<(), StoreError> {
        if !self.is_running() {
            return Ok(());
        }
        let dir = self.dir.join("data");
        run(
            &mut self.command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&dir)
                    .args(["-m", "fast", "-w", "-t", "60", "stop"]);
            }),
            "pg_ctl stop",
        )?;
        Ok(())
    }

    /// Stops immediately, as a crash would.
    pub fn stop_immediate(&self) -> Result<(), StoreError> {
        let dir = self.dir.join("data");
        run(
            &mut self.command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&dir)
                    .args(["-m", "immediate", "-w", "stop"]);
            }),
            "pg_ctl stop",
        )?;
        Ok(())
    }

    /// Re-reads pg_hba.conf and postgresql.conf.
    pub fn reload(&self) -> Result<(), StoreError> {
        let dir = self.dir.join("data");
        run(
            &mut self.command("pg_ctl", |c| {
                c.arg("-D").arg(&dir).arg("reload");
            }),
            "pg_ctl reload",
        )?;
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        let dir = self.dir.join("data");
        self.command("pg_ctl", |c| {
            c.arg("-D").arg(&dir).arg("status");
        })
        .output()
        .is_ok_and(|o| o.status.success())
    }

    /// A connection URL for `user`/`password` to `database` over TCP.
    pub fn url(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}",
            enc(user),
            enc(password),
            self.port,
            enc(database)
        )
    }

    /// The superuser URL for `database`.
    pub fn superuser_url(&self, database: &str) -> String {
        self.url("postgres", &self.superuser_password, database)
    }

    /// Gives `path` (recursively) to the service user when running as root.
    pub fn hand_over(&self, path: &Path) -> Result<(), StoreError> {
        if let Some(u) = &self.os_user {
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{u}:"))
                    .arg(path),
                "chown",
            )?;
        }
        Ok(())
    }

    fn command(&self, tool: &str, args: impl FnOnce(&mut Command)) -> Command {
        let exe = self.bin.join(tool);
        let mut c = match &self.os_user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        c.current_dir("/");
        args(&mut c);
        c
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn append(path: &Path, text: &str) -> Result<(), StoreError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StoreError::Cluster(format!("cannot open {}: {e}", path.display())))?;
    writeln!(f, "\n{text}")
        .map_err(|e| StoreError::Cluster(format!("cannot write {}: {e}", path.display())))
}

fn read_port(conf: &Path) -> Result<u16, StoreError> {
    let text = std::fs::read_to_string(conf)
        .map_err(|e| StoreError::Cluster(format!("cannot read {}: {e}", conf.display())))?;
    text.lines()
        .rev()
        .filter_map(|l| l.trim().strip_prefix("port"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .find_map(|v| v.split('#').next()?.trim().parse().ok())
        .ok_or_else(|| StoreError::Cluster(format!("no port in {}", conf.display())))
}

fn set_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encodes_credentials() {
        let c = Cluster {
            dir: PathBuf::new(),
            port: 5,
            bin: PathBuf::new(),
            os_user: None,
            superuser_password: "p@ss:w/rd".into(),
        };
        assert_eq!(
            c.superuser_url("db"),
            "postgresql://postgres:p%40ss%3Aw%2Frd@127.0.0.1:5/db"
        );
    }

    #[test]
    fn last_port_line_wins() {
        let dir = std::env::temp_dir().join(format!("assay-port-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("postgresql.conf");
        std::fs::write(
            &f,
            "#port = 5432\nport = 5432\nmax_connections = 10\nport = 6543 # ours\n",
        )
        .unwrap();
        assert_eq!(read_port(&f).unwrap(), 6543);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
