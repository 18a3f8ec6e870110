//! `auth`, `tokens`, `users` and `teams`.

use super::client;
use crate::client::{Client, Config, normalize_url};
use crate::printer::Format;
use crate::{Outcome, printer};
use anyhow::Result;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum AuthCmd {
    /// Save a server URL and an API token to the config file
    Init {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        no_verify_ssl: bool,
    },
    /// Log in with a username and password and save the new token
    Login {
        #[arg(long)]
        url: String,
        #[arg(long)]
        username: String,
        #[arg(long, env = "ASSAY_PASSWORD")]
        password: String,
        /// Seconds to wait for the server
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[arg(long)]
        no_verify_ssl: bool,
    },
    /// Show who the saved token belongs to
    Status,
}

#[derive(Subcommand)]
pub enum TokensCmd {
    /// Create an API token (for yourself, or as admin for --user-id)
    Create {
        #[arg(long, default_value = "api token")]
        name: String,
        #[arg(long)]
        user_id: Option<i64>,
        /// Days until it expires; 0 for never
        #[arg(long)]
        days: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum UsersCmd {
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, env = "ASSAY_NEW_USER_PASSWORD")]
        password: Option<String>,
        /// Admin or Member
        #[arg(long, default_value = "Member")]
        role: String,
        /// Comma-separated team names
        #[arg(long, value_delimiter = ',')]
        teams: Vec<String>,
    },
    List {
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
}

#[derive(Subcommand)]
pub enum TeamsCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    List {
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    Get {
        #[arg(long)]
        id: i64,
        #[arg(long, short = 'f', value_enum)]
        format: Option<Format>,
    },
    /// Put a user in a team
    AddMember {
        #[arg(long)]
        team_id: i64,
        #[arg(long, conflicts_with = "username")]
        user_id: Option<i64>,
        #[arg(long)]
        username: Option<String>,
    },
}

pub async fn auth(cmd: AuthCmd) -> Result<Outcome> {
    match cmd {
        AuthCmd::Init {
            url,
            token,
            no_verify_ssl,
        } => {
            let cfg = Config {
                url: normalize_url(&url),
                token,
                ssl_verify: !no_verify_ssl,
            };
            let me = Client::new(&cfg)?.get("/users/me", &[]).await?;
            let path = cfg.save()?;
            printer::line(format!(
                "Signed in as {} at {}; configuration saved to {}",
                me["username"].as_str().unwrap_or("?"),
                cfg.url,
                path.display()
            ));
        }
        AuthCmd::Login {
            url,
            username,
            password,
            timeout,
            no_verify_ssl,
        } => {
            let mut cfg = Config {
                url: normalize_url(&url),
                token: String::new(),
                ssl_verify: !no_verify_ssl,
            };
            let login = Client::new(&cfg)?;
            let body = json!({"username": username, "password": password});
            let resp = tokio::time::timeout(
                std::time::Duration::from_secs(timeout.max(1)),
                login.post("/auth/login", &body),
            )
            .await
            .map_err(|_| anyhow::anyhow!("no answer from {} within {timeout} s", cfg.url))??;
            cfg.token = resp["token"].as_str().unwrap_or_default().to_string();
            let path = cfg.save()?;
            printer::line(format!(
                "Logged in as {username}; configuration saved to {}",
                path.display()
            ));
        }
        AuthCmd::Status => {
            let me = client()?.get("/users/me", &[]).await?;
            printer::json(&me);
        }
    }
    Ok(Outcome::Ok)
}

pub async fn tokens(cmd: TokensCmd) -> Result<Outcome> {
    let TokensCmd::Create {
        name,
        user_id,
        days,
    } = cmd;
    let mut body = json!({"name": name});
    if let Some(u) = user_id {
        body["user_id"] = json!(u);
    }
    if let Some(d) = days {
        body["days"] = json!(d);
    }
    let resp = client()?.post("/tokens", &body).await?;
    printer::line(resp["token"].as_str().unwrap_or_default());
    Ok(Outcome::Ok)
}

pub async fn users(cmd: UsersCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        UsersCmd::Create {
            username,
            name,
            email,
            password,
            role,
            teams,
        } => {
            let body = json!({"username": username, "name": name, "email": email, "password": password, "role": role, "teams": teams});
            printer::json(&c.post("/users", &body).await?);
        }
        UsersCmd::List { format } => {
            let all = c.all("/users", &[]).await?;
            printer::list(&all, &["id", "username", "name", "role", "teams"], format);
        }
        UsersCmd::Get { id, format } => {
            printer::object(&c.get(&format!("/users/{id}"), &[]).await?, format)
        }
    }
    Ok(Outcome::Ok)
}

pub async fn teams(cmd: TeamsCmd) -> Result<Outcome> {
    let c = client()?;
    match cmd {
        TeamsCmd::Create { name, description } => printer::json(
            &c.post("/teams", &json!({"name": name, "description": description}))
                .await?,
        ),
        TeamsCmd::List { format } => {
            let all = c.all("/teams", &[]).await?;
            printer::list(&all, &["id", "name", "members", "description"], format);
        }
        TeamsCmd::Get { id, format } => {
            printer::object(&c.get(&format!("/teams/{id}"), &[]).await?, format)
        }
        TeamsCmd::AddMember {
            team_id,
            user_id,
            username,
        } => {
            let body = match (user_id, username) {
                (Some(u), _) => json!({"user_id": u}),
                (None, Some(n)) => json!({"username": n}),
                (None, None) => crate::usage!("give --user-id or --username"),
            };
            let team: Value = c.post(&format!("/teams/{team_id}/members"), &body).await?;
            printer::json(&team);
        }
    }
    Ok(Outcome::Ok)
}
