//! Opening the metadata store: a connection pool, migrations (under an advisory lock so several servers may
//! start at once) and the cipher for secrets at rest.

use crate::cached::Cached;
use crate::crypto::Cipher;
use crate::error::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;

pub(crate) mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The one visibility predicate for a datastore id expression (`d.id`, `k.datastore_id`): admins (`$1`) see
/// everything; user `$2` sees datastores of the teams they belong to and of `Public`.
#[macro_export]
#[doc(hidden)]
macro_rules! visible {
    ($datastore:literal) => {
        concat!(
            "($1::bool OR EXISTS (SELECT 1 FROM datastore_teams dt JOIN teams t ON t.id = dt.team_id WHERE dt.datastore_id = ",
            $datastore,
            " AND (t.name = 'Public' OR EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = t.id AND m.user_id = $2::bigint))))"
        )
    };
}

const MIGRATION_LOCK: i64 = 0x4153_5341_5900_0001;

/// Who is asking: admins see everything; others see the datastores of their teams and of `Public`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: i64,
    pub is_admin: bool,
}

impl Viewer {
    pub fn admin(user_id: i64) -> Self {
        Self {
            user_id,
            is_admin: true,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) cipher: Cipher,
}

impl Store {
    /// Connects to `url`, applies pending migrations and returns the store.
    pub async fn open(url: &str, cipher: Cipher) -> Result<Store, StoreError> {
        let cfg = tokio_postgres::Config::from_str(url).map_err(|e| {
            StoreError::Invalid(format!("metadata URL is not a valid PostgreSQL URL ({e}); use postgresql://user:password@host:port/database"))
        })?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
            assay_postgres::tls::client_config(assay_postgres::tls::Verify::None, None)
                .map_err(StoreError::Invalid)?,
        );
        let mgr = Manager::from_config(
            cfg,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(16)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(15)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = Store { pool, cipher };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut obj = self.pool.get().await?;
        let client: &mut tokio_postgres::Client = &mut obj;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let result = embedded::migrations::runner()
            .set_migration_table_name("assay_schema_history")
            .run_async(client)
            .await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        result.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(())
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    pub fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    /// A setting's value, decrypted; `None` when unset.
    pub async fn secret_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        let row = c
            .q_opt("SELECT value FROM settings WHERE key = $1", &[&key])
            .await?;
        row.map(|r| self.cipher.decrypt(&r.get::<_, Vec<u8>>(0)))
            .transpose()
    }

    /// Stores `value` encrypted under `key` unless the key is already set; returns the value in force.
    pub async fn init_secret_setting(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let c = self.client().await?;
        c.exec(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &self.cipher.encrypt(value)],
        )
        .await?;
        drop(c);
        Ok(self
            .secret_setting(key)
            .await?
            .expect("the setting was just written"))
    }

    /// `SELECT 1` against the store.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.q_one("SELECT 1", &[]).await?;
        Ok(())
    }
}

/// One page of `SELECT cols FROM from WHERE cond ORDER BY order` and the total count; `args` bind `$1..$n` and
/// the page takes `$n+1` (limit) and `$n+2` (offset). A page that comes back short of `size` rows (and is not
/// past the end) is the last one, so its total is known without counting: most lists fit one page, and the
/// count query is only run when there may be more.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn paged(
    c: &deadpool_postgres::ClientWrapper,
    cols: &str,
    from: &str,
    cond: &str,
    order: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    page: i64,
    size: i64,
) -> Result<(Vec<tokio_postgres::Row>, i64), StoreError> {
    let offset = (page - 1) * size;
    let mut all = args.to_vec();
    all.push(&size);
    all.push(&offset);
    let n = args.len();
    let sql = format!(
        "SELECT {cols} FROM {from} WHERE {cond} ORDER BY {order} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let rows = c.q(&sql, &all).await?;
    let len = rows.len() as i64;
    if len < size && (len > 0 || offset == 0) {
        return Ok((rows, offset + len));
    }
    let total: i64 = c
        .q_one(&format!("SELECT count(*) FROM {from} WHERE {cond}"), args)
        .await?
        .get(0);
    Ok((rows, total))
}
