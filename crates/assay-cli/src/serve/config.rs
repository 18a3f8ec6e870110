//! The server's settings: flags, environment variables and the configuration file, in that order of
//! precedence, over the defaults. Every value, whichever its source, is checked before the server starts, and
//! every mistake is reported at once, each naming its key (`server.listen`) or flag (`--listen`).

use super::file::{Doc, FileError, parse_duration};
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// The configuration file (TOML); flags and environment variables override what it says
    #[arg(long, env = "ASSAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, env = "ASSAY_LISTEN")]
    pub listen: Option<String>,
    /// Where the embedded metadata cluster and the key file live [default: ./assay-data]
    #[arg(long, env = "ASSAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// An external PostgreSQL for the metadata (postgresql://user:password@host:port/db)
    #[arg(long, env = "ASSAY_METADATA_URL", hide_env_values = true)]
    pub metadata_url: Option<String>,
    /// The 32-byte key that encrypts stored secrets (default: <data-dir>/secret.key, created when missing)
    #[arg(long, env = "ASSAY_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Where people reach the web UI, for links in notifications [default: http://<listen address>]
    #[arg(long, env = "ASSAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log format: human or json [default: human]
    #[arg(long, env = "ASSAY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Log level or filter, such as info or assay_ops=debug,info [default: info]
    #[arg(long, env = "ASSAY_LOG")]
    pub log_level: Option<String>,
    /// A separate address serving /metrics without a token (e.g. 127.0.0.1:9464)
    #[arg(long, env = "ASSAY_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// The bearer token scrapers present on the main listener's /metrics (admins' API tokens work too)
    #[arg(long, env = "ASSAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// How long running operations may go on after SIGTERM before they are stopped and queued again [default: 30s]
    #[arg(long, env = "ASSAY_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// The settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub metadata_url: Option<String>,
    pub key_file: Option<PathBuf>,
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub metrics_listen: Option<String>,
    pub metrics_token: Option<String>,
    pub shutdown_grace: Duration,
    pub schedule_tick: Duration,
    pub min_schedule_interval: Duration,
    pub flows_tick: Duration,
    pub retry_base: Duration,
}

/// The configuration could not be used: every mistake, each naming its key or flag.
#[derive(Debug)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<FileError>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{} has {n} error{}:",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigErrors> for crate::usage::Usage {
    fn from(e: ConfigErrors) -> Self {
        crate::usage::Usage(e.to_string().trim_end().to_string())
    }
}

fn address(v: &str) -> Result<(), String> {
    let port = v
        .rsplit_once(':')
        .map(|(host, port)| (host, port.parse::<u16>()));
    match port {
        Some((host, Ok(_))) if !host.is_empty() => Ok(()),
        _ => Err(format!(
            "'{v}' is not host:port; write it like 127.0.0.1:8000"
        )),
    }
}

fn metadata_url(v: &str) -> Result<(), String> {
    if !(v.starts_with("postgresql://") || v.starts_with("postgres://")) {
        return Err("must be a postgresql://user:password@host:port/database URL".into());
    }
    v.parse::<tokio_postgres::Config>()
        .map(|_| ())
        .map_err(|e| format!("is not a valid PostgreSQL URL ({e})"))
}

fn public_url(v: &str) -> Result<(), String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("'{v}' must start with http:// or https://"))
    }
}

fn log_format(v: &str) -> Result<(), String> {
    match v {
        "human" | "json" => Ok(()),
        _ => Err(format!("'{v}' is not a log format; use human or json")),
    }
}

fn log_level(v: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::try_new(v)
        .map(|_| ())
        .map_err(|e| format!("'{v}' is not a log level or filter ({e}); use e.g. info or debug"))
}

fn metrics_token(v: &str) -> Result<(), String> {
    if v.len() < 16 {
        Err("must be at least 16 characters (generate one with: openssl rand -hex 32)".into())
    } else {
        Ok(())
    }
}

const MIN_TICK: Duration = Duration::from_millis(10);

/// What the file says; `None` where it is silent.
#[derive(Default)]
struct FromFile {
    listen: Option<String>,
    data_dir: Option<String>,
    metadata_url: Option<String>,
    key_file: Option<String>,
    public_url: Option<String>,
    shutdown_grace: Option<Duration>,
    log_format: Option<String>,
    log_level: Option<String>,
    metrics_listen: Option<String>,
    metrics_token: Option<String>,
    schedule_tick: Option<Duration>,
    min_schedule_interval: Option<Duration>,
    flows_tick: Option<Duration>,
    retry_base: Option<Duration>,
}

fn read_file(text: &str) -> Result<FromFile, Vec<FileError>> {
    let mut doc = Doc::parse(text).map_err(|e| vec![e])?;
    let mut f = FromFile::default();
    let mut s = doc.section("server");
    f.listen = s.string("listen", address);
    f.data_dir = s.string("data_dir", |_| Ok(()));
    f.metadata_url = s.string("metadata_url", metadata_url);
    f.key_file = s.string("key_file", |_| Ok(()));
    f.public_url = s.string("public_url", public_url);
    f.shutdown_grace = s.duration("shutdown_grace", Duration::ZERO);
    s.finish();
    let mut s = doc.section("log");
    f.log_format = s.string("format", log_format);
    f.log_level = s.string("level", log_level);
    s.finish();
    let mut s = doc.section("metrics");
    f.metrics_listen = s.string("listen", address);
    f.metrics_token = s.string("token", metrics_token);
    s.finish();
    let mut s = doc.section("scheduler");
    f.schedule_tick = s.duration("tick", MIN_TICK);
    f.min_schedule_interval = s.duration("min_interval", Duration::from_secs(1));
    s.finish();
    let mut s = doc.section("notifications");
    f.flows_tick = s.duration("tick", MIN_TICK);
    f.retry_base = s.duration("retry_base", MIN_TICK);
    s.finish();
    let errors = doc.finish();
    if errors.is_empty() {
        Ok(f)
    } else {
        Err(errors)
    }
}

/// Reads and checks a configuration file alone (`assay config check`).
pub fn check_file(path: &std::path::Path) -> Result<(), ConfigErrors> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        source: source.clone(),
        errors: vec![FileError {
            key: "(file)".into(),
            message: format!("cannot be read ({e})"),
        }],
    })?;
    read_file(&text)
        .map(|_| ())
        .map_err(|errors| ConfigErrors { source, errors })
}

impl Config {
    /// The settings from `args` (flags and environment), the file they name, and the defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Config, ConfigErrors> {
        let (file, source) = match &args.config {
            Some(path) => {
                check_file(path)?;
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let file = read_file(&text).map_err(|errors| ConfigErrors {
                    source: path.display().to_string(),
                    errors,
                })?;
                (file, format!("the configuration ({})", path.display()))
            }
            None => (FromFile::default(), "the configuration".to_string()),
        };
        let mut errors = Vec::new();
        let mut flag = |name: &str, v: &Option<String>, check: fn(&str) -> Result<(), String>| {
            if let Some(v) = v
                && let Err(message) = check(v)
            {
                errors.push(FileError {
                    key: format!("--{name}"),
                    message,
                });
            }
        };
        flag("listen", &args.listen, address);
        flag("metadata-url", &args.metadata_url, metadata_url);
        flag("public-url", &args.public_url, public_url);
        flag("log-format", &args.log_format, log_format);
        flag("log-level", &args.log_level, log_level);
        flag("metrics-listen", &args.metrics_listen, address);
        flag("metrics-token", &args.metrics_token, metrics_token);
        let grace = match &args.shutdown_grace {
            Some(v) => match parse_duration(v, Duration::ZERO) {
                Ok(d) => Some(d),
                Err(message) => {
                    errors.push(FileError {
                        key: "--shutdown-grace".into(),
                        message,
                    });
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(ConfigErrors { source, errors });
        }
        let defaults = assay_ops::Settings::default();
        Ok(Config {
            listen: args
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8000".into()),
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir.map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("./assay-data")),
            metadata_url: args.metadata_url.clone().or(file.metadata_url),
            key_file: args.key_file.clone().or(file.key_file.map(PathBuf::from)),
            public_url: args.public_url.clone().or(file.public_url),
            log_format: match args.log_format.clone().or(file.log_format).as_deref() {
                Some("json") => LogFormat::Json,
                _ => LogFormat::Human,
            },
            log_level: args
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            metrics_listen: args.metrics_listen.clone().or(file.metrics_listen),
            metrics_token: args.metrics_token.clone().or(file.metrics_token),
            shutdown_grace: grace
                .or(file.shutdown_grace)
                .unwrap_or(defaults.shutdown_grace),
            schedule_tick: file.schedule_tick.unwrap_or(defaults.schedule_tick),
            min_schedule_interval: file
                .min_schedule_interval
                .unwrap_or(Duration::from_secs(defaults.min_schedule_interval as u64)),
            flows_tick: file.flows_tick.unwrap_or(defaults.flows_tick),
            retry_base: file.retry_base.unwrap_or(defaults.retry_base),
        })
    }

    /// The key file: the one configured, else `secret.key` in the data directory.
    pub fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The operations' pace from these settings (`public_url` is set once the address is known).
    pub fn ops_settings(&self) -> assay_ops::Settings {
        assay_ops::Settings {
            schedule_tick: self.schedule_tick,
            min_schedule_interval: self.min_schedule_interval.as_secs() as i64,
            flows_tick: self.flows_tick,
            retry_base: self.retry_base,
            shutdown_grace: self.shutdown_grace,
            ..assay_ops::Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str, args: ServeArgs) -> Result<Config, ConfigErrors> {
        let path = std::env::temp_dir().join(format!("assay-config-{}.toml", uuid_like()));
        std::fs::write(&path, text).unwrap();
        let r = Config::resolve(&ServeArgs {
            config: Some(path.clone()),
            ..args
        });
        let _ = std::fs::remove_file(path);
        r
    }

    fn uuid_like() -> String {
        format!("{:x}", rand::random::<u64>())
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let c = with_file(
            "[server]\nlisten = \"127.0.0.1:9000\"\ndata_dir = \"/srv/assay\"\n\
             [scheduler]\nmin_interval = \"1s\"\ntick = \"200ms\"\n",
            ServeArgs {
                listen: Some("127.0.0.1:9100".into()),
                ..ServeArgs::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:9100");
        assert_eq!(c.data_dir, PathBuf::from("/srv/assay"));
        assert_eq!(c.schedule_tick, Duration::from_millis(200));
        assert_eq!(c.ops_settings().min_schedule_interval, 1);
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.log_format, LogFormat::Human);
    }

    #[test]
    fn a_bad_file_lists_every_error() {
        let e = with_file(
            "[server]\nlisten = \"nowhere\"\npublic_url = \"assay.example.com\"\nshutdown_grace = 5\n\
             [log]\nformat = \"xml\"\nlevle = \"info\"\n\
             [metrics]\ntoken = \"short\"\n[schedular]\n",
            ServeArgs::default(),
        )
        .unwrap_err();
        let keys: Vec<&str> = e.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.listen",
                "server.public_url",
                "server.shutdown_grace",
                "log.format",
                "log.levle",
                "metrics.token",
                "schedular"
            ],
            "{e}"
        );
        let text = e.to_string();
        assert!(text.contains("has 7 errors"), "{text}");
        assert!(text.contains("did you mean 'level'?"), "{text}");
        assert!(text.contains("did you mean 'scheduler'?"), "{text}");
    }

    #[test]
    fn bad_flags_are_named_by_flag() {
        let e = Config::resolve(&ServeArgs {
            listen: Some("8000".into()),
            log_format: Some("yaml".into()),
            shutdown_grace: Some("later".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        let keys: Vec<&str> = e.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["--listen", "--log-format", "--shutdown-grace"]);
    }
}
