//! Secrets at rest: AES-256-GCM with a key file created on first start (mode 0600). Each value gets a fresh
//! 96-bit nonce, stored before the ciphertext.

use crate::error::StoreError;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use std::io::Write;
use std::path::Path;

#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<key>)")
    }
}

impl Cipher {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    /// Loads the key at `path`, creating it (0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        if path.exists() {
            let bytes = std::fs::read(path).map_err(|e| {
                StoreError::Crypto(format!("cannot read key file {}: {e}", path.display()))
            })?;
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                StoreError::Crypto(format!(
                    "key file {} is not 32 bytes; restore the original file",
                    path.display()
                ))
            })?;
            return Ok(Self::from_key(&key));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Crypto(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let key: [u8; 32] = rand::random();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(path)
            .map_err(|e| StoreError::Crypto(format!("cannot create {}: {e}", path.display())))?;
        f.write_all(&key)
            .map_err(|e| StoreError::Crypto(format!("cannot write {}: {e}", path.display())))?;
        Ok(Self::from_key(&key))
    }

    pub fn encrypt(&self, plain: &str) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let mut out = nonce.to_vec();
        out.extend(
            self.aead
                .encrypt(&Nonce::from(nonce), plain.as_bytes())
                .expect("AES-GCM encryption cannot fail"),
        );
        out
    }

    pub fn decrypt(&self, data: &[u8]) -> Result<String, StoreError> {
        if data.len() < 12 {
            return Err(StoreError::Crypto("stored secret is truncated".into()));
        }
        let (nonce, body) = data.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("split at 12");
        let plain = self.aead.decrypt(&Nonce::from(nonce), body).map_err(|_| {
            StoreError::Crypto(
                "a stored secret cannot be decrypted: the key file differs from the one used to \
                                store it; start with the original key file"
                    .into(),
            )
        })?;
        String::from_utf8(plain)
            .map_err(|_| StoreError::Crypto("stored secret is not UTF-8".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_uses_fresh_nonces() {
        let c = Cipher::from_key(&[7; 32]);
        let a = c.encrypt("hunter2");
        let b = c.encrypt("hunter2");
        assert_ne!(a, b);
        assert!(!a.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(c.decrypt(&a).unwrap(), "hunter2");
        assert!(Cipher::from_key(&[8; 32]).decrypt(&a).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("assay-key-{}", std::process::id()));
        let path = dir.join("secret.key");
        let c1 = Cipher::load_or_create(&path).unwrap();
        let c2 = Cipher::load_or_create(&path).unwrap();
        assert_eq!(c2.decrypt(&c1.encrypt("x")).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
