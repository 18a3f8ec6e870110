//! Failure classification: a PostgreSQL or network error becomes a [`Diagnosis`] with the server's SQLSTATE and
//! message, the likely cause, the possible reasons (authentication first, then permissions, then network, as the
//! troubleshooting guide advises) and the fix.

use serde::Serialize;
use std::fmt;

/// The area a failure belongs to, in the order to check them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Authentication,
    Permission,
    Database,
    Network,
    Tls,
    Server,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// SQLSTATE (e.g. `28P01`) or, for failures below SQL, a short name (`connection_refused`, `unknown_host`,
    /// `timeout`, `tls`).
    pub code: String,
    pub category: Category,
    /// What the server or the network said.
    pub message: String,
    pub cause: String,
    pub reasons: Vec<String>,
    pub fix: String,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}]. Likely cause: {}.",
            self.message, self.code, self.cause
        )?;
        if !self.reasons.is_empty() {
            write!(f, " Possible reasons: {}.", self.reasons.join("; "))?;
        }
        write!(f, " Fix: {}", self.fix)
    }
}

fn d(
    code: &str,
    category: Category,
    message: String,
    cause: &str,
    reasons: &[&str],
    fix: &str,
) -> Diagnosis {
    Diagnosis {
        code: code.to_string(),
        category,
        message,
        cause: cause.to_string(),
        reasons: reasons.iter().map(|s| s.to_string()).collect(),
        fix: fix.to_string(),
    }
}

/// Classifies an error from `tokio_postgres`. `host`/`port`/`user`/`database` only shape the advice.
pub fn classify(err: &tokio_postgres::Error, ctx: &Context<'_>) -> Diagnosis {
    if let Some(db) = err.as_db_error() {
        return classify_sqlstate(
            db.code().code(),
            &format!("{}: {}", db.severity(), db.message()),
            ctx,
        );
    }
    classify_transport(&chain(err), ctx)
}

/// What was being connected to, for the advice.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub database: &'a str,
}

/// Classification by SQLSTATE and the server's message.
pub fn classify_sqlstate(code: &str, message: &str, ctx: &Context<'_>) -> Diagnosis {
    let m = message.to_string();
    let lower = message.to_lowercase();
    match code {
        "28P01" => d(
            code,
            Category::Authentication,
            m,
            "incorrect username or password",
            &[
                "incorrect password: it does not match the one set for the role",
                "the role does not exist: the name is misspelled or was never created",
                "authentication method mismatch: pg_hba.conf requires another method (e.g. md5 vs scram-sha-256)",
            ],
            &format!(
                "verify the credentials and that the role \"{}\" exists (\\du in psql); the server log \
                 (log_directory) gives the exact reason",
                ctx.user
            ),
        ),
        "28000" if lower.contains("no pg_hba.conf entry") => d(
            code,
            Category::Network,
            m,
            "the server does not allow connections from this host for this role and database",
            &[
                "this host's IP address is not listed in pg_hba.conf",
                "the pg_hba.conf entry restricts access to other databases or roles",
                "SSL required: the matching entry is `hostssl` but the connection does not use SSL (set sslmode)",
            ],
            &format!(
                "add a line for this host, role \"{}\" and database \"{}\" to pg_hba.conf and reload the \
                 configuration (SELECT pg_reload_conf())",
                ctx.user, ctx.database
            ),
        ),
        "28000" if lower.contains("rejects connection") => d(
            code,
            Category::Network,
            m,
            "pg_hba.conf has a `reject` line matching this host, role and database",
            &[
                "the role or this host is explicitly rejected",
                "the reject line comes before the line that would allow it",
            ],
            "remove or reorder the reject line in pg_hba.conf, or connect with a role the server accepts, then reload \
             the configuration",
        ),
        "28000" if lower.contains("not permitted to log in") => d(
            code,
            Category::Authentication,
            m,
            "the role exists but has no LOGIN attribute",
            &["the role was created as a group role (NOLOGIN)"],
            &format!(
                "run ALTER ROLE {} LOGIN, or use a role that can log in",
                crate::quote_ident(ctx.user)
            ),
        ),
        "28000" => d(
            code,
            Category::Authentication,
            m,
            "the server refused this authorization",
            &[
                "pg_hba.conf rules or role attributes forbid the login",
                "SSL may be required",
            ],
            "check pg_hba.conf and the role's attributes, then reload the configuration",
        ),
        "3D000" => d(
            code,
            Category::Database,
            m,
            "the database does not exist on this server",
            &[
                "the database name is misspelled (names are case-sensitive)",
                "the connection points at another server",
            ],
            &format!(
                "check the database name \"{}\" (\\l in psql lists them)",
                ctx.database
            ),
        ),
        "42501" => {
            let role = crate::quote_ident(ctx.user);
            let (cause, fix) = if lower.contains("for database") {
                (
                    "the role lacks CONNECT on the database",
                    format!(
                        "run GRANT CONNECT ON DATABASE {} TO {role}",
                        crate::quote_ident(ctx.database)
                    ),
                )
            } else if lower.contains("for schema") {
                (
                    "the role lacks USAGE on the schema",
                    format!("run GRANT USAGE ON SCHEMA <schema_name> TO {role}"),
                )
            } else if lower.contains("to create") {
                (
                    "the enrichment role lacks CREATE on the schema",
                    format!("run GRANT CREATE ON SCHEMA <schema_name> TO {role}"),
                )
            } else if lower.contains("for table")
                || lower.contains("for relation")
                || lower.contains("for view")
            {
                (
                    "the role lacks SELECT on one or more tables",
                    format!("run GRANT SELECT ON ALL TABLES IN SCHEMA <schema_name> TO {role}"),
                )
            } else if lower.contains("for sequence") {
                (
                    "the role lacks SELECT on one or more sequences",
                    format!("run GRANT SELECT ON ALL SEQUENCES IN SCHEMA <schema_name> TO {role}"),
                )
            } else {
                (
                    "the role lacks a privilege",
                    "grant the privilege named in the message".to_string(),
                )
            };
            d(
                code,
                Category::Permission,
                m,
                cause,
                &[
                    "missing USAGE on the schema: table grants alone do not open it",
                    "missing SELECT on tables",
                    "default privileges not set: tables created after the grant are not covered \
                     (use ALTER DEFAULT PRIVILEGES)",
                ],
                &fix,
            )
        }
        "53300" => d(
            code,
            Category::Server,
            m,
            "the server has no free connection slots",
            &[
                "max_connections is reached",
                "the role's CONNECTION LIMIT is reached",
            ],
            "close idle sessions, raise max_connections or the role's connection limit, or lower max_parallelization",
        ),
        "57P03" => d(
            code,
            Category::Server,
            m,
            "the server is starting up, shutting down or in recovery",
            &[],
            "wait until the server accepts connections and try again",
        ),
        "55P03" => d(
            code,
            Category::Server,
            m,
            "the query waited longer than lock_timeout for a lock on the table: another session holds a lock \
             that conflicts with reading it",
            &[
                "an ALTER TABLE, DROP, TRUNCATE, REINDEX, VACUUM FULL or CLUSTER is running on the table",
                "a session ran LOCK TABLE and has not ended its transaction",
            ],
            "find the session holding the lock (SELECT pid, state, query FROM pg_stat_activity WHERE pid IN \
             (SELECT pid FROM pg_locks WHERE granted AND relation = '<schema>.<table>'::regclass)), let it finish \
             or end it, and run again; or raise lock_timeout for the role (ALTER ROLE ... SET lock_timeout = '5min')",
        ),
        "57P01" | "57P02" => d(
            code,
            Category::Server,
            m,
            "the server ended the session while a statement ran",
            &[
                "an administrator or a monitoring job terminated it (pg_terminate_backend)",
                "the server is shutting down or restarting",
            ],
            "run the operation again once the server accepts connections; if sessions keep being ended, ask \
             the database administrator which job terminates them",
        ),
        "57014" => d(
            code,
            Category::Server,
            m,
            "the query was cancelled (statement timeout or an abort)",
            &[],
            "raise statement_timeout for the role or try again when the server is less busy",
        ),
        _ => d(
            code,
            Category::Server,
            m,
            "the server reported an error",
            &[],
            "read the server's message; the PostgreSQL documentation lists this SQLSTATE in its error codes appendix",
        ),
    }
}

/// Classification of failures below SQL: refused, unknown host, timeout, TLS.
pub fn classify_transport(text: &str, ctx: &Context<'_>) -> Diagnosis {
    let lower = text.to_lowercase();
    let target = format!("{}:{}", ctx.host, ctx.port);
    if lower.contains("server does not support tls")
        || lower.contains("server does not support ssl")
    {
        return d(
            "tls_unsupported",
            Category::Tls,
            text.to_string(),
            "sslmode requires TLS but the server does not offer it",
            &["ssl = off on the server"],
            "enable ssl on the server, or set sslmode to prefer or disable if the network is trusted",
        );
    }
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        return d(
            "tls",
            Category::Tls,
            text.to_string(),
            "the TLS handshake failed",
            &[
                "the server's certificate is not signed by a trusted CA (give sslrootcert)",
                "the certificate's name does not match the host (verify-full checks it)",
                "the certificate has expired",
            ],
            "check sslmode and sslrootcert in the connection parameters and the server's certificate",
        );
    }
    if lower.contains("connection refused") {
        return d(
            "connection_refused",
            Category::Network,
            text.to_string(),
            &format!("nothing accepts connections at {target}"),
            &[
                "the server is not running",
                "the port is wrong",
                "listen_addresses does not include this interface",
            ],
            "check host and port, that the server is running, and listen_addresses in postgresql.conf",
        );
    }
    if lower.contains("lookup")
        || lower.contains("name or service not known")
        || lower.contains("resolve")
    {
        return d(
            "unknown_host",
            Category::Network,
            text.to_string(),
            &format!("the host name \"{}\" does not resolve", ctx.host),
            &[
                "the host name is misspelled",
                "DNS is not reachable from this host",
            ],
            "check the host name, or use the server's IP address",
        );
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return d(
            "timeout",
            Category::Network,
            text.to_string(),
            &format!("no answer from {target} in time"),
            &[
                "a firewall drops the packets",
                "the host is down or unreachable",
                "the server is overloaded",
            ],
            "check network reachability and firewalls between this host and the server",
        );
    }
    if lower.contains("connection closed") {
        return d(
            "connection_closed",
            Category::Network,
            text.to_string(),
            &format!("the session with {target} ended while a statement ran"),
            &[
                "the server was stopped, restarted or crashed",
                "the network between this host and the server dropped the connection",
            ],
            "check that the server is running (its log says why it stopped), then run the operation again",
        );
    }
    d(
        "connection_failed",
        Category::Network,
        text.to_string(),
        "the connection failed",
        &[],
        "check host, port and network",
    )
}

/// The error and its sources as one line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context<'static> = Context {
        host: "db",
        port: 5432,
        user: "reader",
        database: "shop",
    };

    #[test]
    fn each_troubleshooting_row_has_its_fix() {
        let a = classify_sqlstate(
            "28P01",
            "FATAL: password authentication failed for user \"reader\"",
            &CTX,
        );
        assert_eq!(a.category, Category::Authentication);
        assert!(a.reasons[1].contains("role does not exist"));
        let h = classify_sqlstate(
            "28000",
            "FATAL: no pg_hba.conf entry for host \"1.2.3.4\"",
            &CTX,
        );
        assert!(
            h.fix.contains("pg_hba.conf") && h.reasons.iter().any(|r| r.contains("SSL required"))
        );
        let s = classify_sqlstate("42501", "ERROR: permission denied for schema s", &CTX);
        assert!(s.fix.contains("GRANT USAGE ON SCHEMA"), "{}", s.fix);
        let t = classify_sqlstate("42501", "ERROR: permission denied for table t", &CTX);
        assert!(t.fix.contains("GRANT SELECT ON ALL TABLES IN SCHEMA"));
        let c = classify_sqlstate("42501", "ERROR: permission denied to create table", &CTX);
        assert!(c.fix.contains("GRANT CREATE ON SCHEMA"), "{}", c.fix);
        let db = classify_sqlstate(
            "42501",
            "FATAL: permission denied for database \"shop\"",
            &CTX,
        );
        assert!(
            db.fix
                .contains("GRANT CONNECT ON DATABASE \"shop\" TO \"reader\"")
        );
    }

    #[test]
    fn transport_failures_are_named() {
        assert_eq!(
            classify_transport(
                "error connecting to server: Connection refused (os error 111)",
                &CTX
            )
            .code,
            "connection_refused"
        );
        assert_eq!(
            classify_transport(
                "failed to lookup address information: Name or service not known",
                &CTX
            )
            .code,
            "unknown_host"
        );
        assert_eq!(classify_transport("timed out", &CTX).code, "timeout");
        assert_eq!(
            classify_transport("invalid peer certificate: UnknownIssuer", &CTX).code,
            "tls"
        );
    }

    #[test]
    fn display_carries_code_cause_and_fix() {
        let text =
            classify_sqlstate("3D000", "FATAL: database \"nope\" does not exist", &CTX).to_string();
        assert!(
            text.contains("[3D000]") && text.contains("Likely cause") && text.contains("Fix:"),
            "{text}"
        );
    }
}
