//! Users, teams, team membership and API tokens.

use crate::cached::Cached;
use crate::db::Store;
use crate::error::{StoreError, unique_as_conflict};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TeamRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub created: DateTime<Utc>,
    pub teams: Vec<TeamRef>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == "Admin"
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub created: DateTime<Utc>,
    pub members: Vec<TeamRef>,
}

const USER_COLS: &str = "u.id, u.username, u.name, u.email, u.role, u.created, \
    COALESCE((SELECT json_agg(json_build_object('id', t.id, 'name', t.name) ORDER BY t.name) \
              FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = u.id), '[]'::json)";

fn user_of(r: &tokio_postgres::Row) -> User {
    let teams: serde_json::Value = r.get(6);
    User {
        id: r.get(0),
        username: r.get(1),
        name: r.get(2),
        email: r.get(3),
        role: r.get(4),
        created: r.get(5),
        teams: refs(teams),
    }
}

fn refs(v: serde_json::Value) -> Vec<TeamRef> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some(TeamRef {
                        id: t.get("id")?.as_i64()?,
                        name: t.get("name")?.as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(self
            .client()
            .await?
            .q_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0))
    }

    pub async fn create_user(
        &self,
        username: &str,
        name: &str,
        email: Option<&str>,
        password_hash: Option<&str>,
        role: &str,
    ) -> Result<User, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_one(
                "INSERT INTO users (username, name, email, password_hash, role) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id",
                &[&username, &name, &email, &password_hash, &role],
            )
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a user named '{username}' already exists")))?;
        drop(c);
        self.user(row.get(0)).await
    }

    pub async fn user(&self, id: i64) -> Result<User, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1"),
                &[&id],
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id} not found")))?;
        Ok(user_of(&row))
    }

    /// The user and their password hash, for logging in.
    pub async fn user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!("SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.username = $1"),
                &[&username],
            )
            .await?;
        Ok(row.map(|r| (user_of(&r), r.get(7))))
    }

    pub async fn list_users(&self, page: i64, size: i64) -> Result<(Vec<User>, i64), StoreError> {
        let c = self.client().await?;
        let (rows, total) =
            crate::db::paged(&c, USER_COLS, "users u", "true", "u.id", &[], page, size).await?;
        Ok((rows.iter().map(user_of).collect(), total))
    }

    pub async fn create_team(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<Team, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_one(
                "INSERT INTO teams (name, description) VALUES ($1, $2) RETURNING id",
                &[&name, &description],
            )
            .await
            .map_err(|e| {
                unique_as_conflict(e, || format!("a team named '{name}' already exists"))
            })?;
        drop(c);
        self.team(row.get(0)).await
    }

    pub async fn team(&self, id: i64) -> Result<Team, StoreError> {
        let (mut teams, _) = self.teams_where("t.id = $1", &id, 1, 1).await?;
        teams
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("team {id} not found")))
    }

    pub async fn list_teams(&self, page: i64, size: i64) -> Result<(Vec<Team>, i64), StoreError> {
        self.teams_where("$1::bigint IS NOT NULL", &0i64, page, size)
            .await
    }

    async fn teams_where(
        &self,
        cond: &str,
        arg: &i64,
        page: i64,
        size: i64,
    ) -> Result<(Vec<Team>, i64), StoreError> {
        let c = self.client().await?;
        let (rows, total) = crate::db::paged(
            &c,
            "t.id, t.name, t.description, t.created, \
               COALESCE((SELECT json_agg(json_build_object('id', u.id, 'name', u.username) ORDER BY u.id) \
                         FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = t.id), '[]'::json)",
            "teams t",
            cond,
            "t.id",
            &[arg],
            page,
            size,
        )
        .await?;
        let teams = rows
            .iter()
            .map(|r| Team {
                id: r.get(0),
                name: r.get(1),
                description: r.get(2),
                created: r.get(3),
                members: refs(r.get(4)),
            })
            .collect();
        Ok((teams, total))
    }

    /// Team ids for names; an unknown name is an error naming it.
    pub async fn team_ids(&self, names: &[String]) -> Result<Vec<i64>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .q("SELECT id, name FROM teams WHERE name = ANY($1)", &[&names])
            .await?;
        let mut ids = Vec::new();
        for n in names {
            match rows.iter().find(|r| r.get::<_, String>(1) == *n) {
                Some(r) => ids.push(r.get(0)),
                None => {
                    return Err(StoreError::Invalid(format!(
                        "team '{n}' does not exist; create it first (assay teams create --name {n:?}) or use Public"
                    )));
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    pub async fn add_member(&self, team_id: i64, user_id: i64) -> Result<Team, StoreError> {
        self.team(team_id).await?;
        self.user(user_id).await?;
        let c = self.client().await?;
        c.exec(
            "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&team_id, &user_id],
        )
        .await?;
        drop(c);
        self.team(team_id).await
    }

    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_one(
                "INSERT INTO api_tokens (user_id, name, expires_at) VALUES ($1, $2, $3) RETURNING id",
                &[&user_id, &name, &expires_at],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The user a live (not revoked, not expired) token belongs to.
    pub async fn token_user(&self, token_id: i64) -> Result<Option<User>, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt(
                &format!(
                    "SELECT {USER_COLS} FROM api_tokens k JOIN users u ON u.id = k.user_id \
                     WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())"
                ),
                &[&token_id],
            )
            .await?;
        Ok(row.as_ref().map(user_of))
    }

    /// Revokes a token (a web session's on sign-out); a no-op when it is already revoked.
    pub async fn revoke_token(&self, token_id: i64) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.exec(
            "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            &[&token_id],
        )
        .await?;
        Ok(())
    }
}
