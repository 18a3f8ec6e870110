//! Key rotation: every secret at rest (the token signing secret and other settings, connection passwords and
//! credentials payloads, flows' secrets) decrypted with the store's key and encrypted again with a new one, in
//! one transaction, so a failure leaves every value under the old key. Servers must be stopped while it runs: a
//! server still holding the old key cannot read what was re-encrypted.

use crate::cached::Cached;
use crate::crypto::Cipher;
use crate::db::Store;
use crate::error::StoreError;

/// Each encrypted column: what it holds (for the report), the statement that reads it (key as text, value) with
/// its rows locked, and the one that writes it back.
const COLUMNS: [(&str, &str, &str); 4] = [
    (
        "settings",
        "SELECT key, value FROM settings FOR UPDATE",
        "UPDATE settings SET value = $2 WHERE key = $1",
    ),
    (
        "connection passwords",
        "SELECT id::text, password_enc FROM connections WHERE password_enc IS NOT NULL FOR UPDATE",
        "UPDATE connections SET password_enc = $2 WHERE id = $1::text::bigint",
    ),
    (
        "connection credentials payloads",
        "SELECT id::text, credentials_enc FROM connections WHERE credentials_enc IS NOT NULL FOR UPDATE",
        "UPDATE connections SET credentials_enc = $2 WHERE id = $1::text::bigint",
    ),
    (
        "flow secrets",
        "SELECT id::text, secrets_enc FROM flows WHERE secrets_enc IS NOT NULL FOR UPDATE",
        "UPDATE flows SET secrets_enc = $2 WHERE id = $1::text::bigint",
    ),
];

impl Store {
    /// Re-encrypts every secret at rest with `new`; returns how many values of each kind were rewritten.
    pub async fn rekey(&self, new: &Cipher) -> Result<Vec<(&'static str, usize)>, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut counts = Vec::new();
        for (what, read, write) in COLUMNS {
            let rows = tx.q(read, &[]).await?;
            for r in &rows {
                let key: String = r.get(0);
                let plain = self.cipher.decrypt(&r.get::<_, Vec<u8>>(1)).map_err(|_| {
                    StoreError::Crypto(format!(
                        "the current key does not decrypt the stored {what}; give the key file the servers use \
                         (nothing was changed)"
                    ))
                })?;
                tx.exec(write, &[&key, &new.encrypt(&plain)]).await?;
            }
            counts.push((what, rows.len()));
        }
        tx.commit().await?;
        Ok(counts)
    }
}
