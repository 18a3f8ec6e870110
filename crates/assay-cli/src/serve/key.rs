//! `assay key rotate`: re-encrypts every secret of the metadata store with a new key file, for the store the
//! server settings name (flags, environment, configuration file). Every server must be stopped first; once it
//! has run, the servers start with the new key file.

use super::config::{Config, ServeArgs};
use crate::Outcome;
use crate::printer;
use crate::usage::Usage;
use anyhow::{Context, Result};
use assay_store::Store;
use assay_store::crypto::Cipher;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Re-encrypt every stored secret with a new key file (stop every server of the store first)
    Rotate {
        #[command(flatten)]
        server: ServeArgs,
        /// The new key file (32 bytes; created with mode 0600 when missing)
        #[arg(long)]
        new_key_file: PathBuf,
    },
}

pub async fn run(cmd: KeyCmd) -> Result<Outcome> {
    let KeyCmd::Rotate {
        server,
        new_key_file,
    } = cmd;
    let config = Config::resolve(&server).map_err(Usage::from)?;
    let old = config.key_file();
    if !old.exists() {
        crate::usage!(
            "there is no key file at {}; name the servers' key file with --key-file",
            old.display()
        );
    }
    let same = match (old.canonicalize(), new_key_file.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        crate::usage!(
            "--new-key-file names the current key file; name a new file (it is created when missing)"
        );
    }
    let old_cipher = Cipher::load_or_create(&old)?;
    let new_cipher = Cipher::load_or_create(&new_key_file)?;
    let (embedded, url) = super::metadata(&config).await?;
    let result = async {
        let store = Store::open(&url, old_cipher)
            .await
            .context("cannot open the metadata store")?;
        Ok::<_, anyhow::Error>(store.rekey(&new_cipher).await?)
    }
    .await;
    if let Some(c) = embedded {
        tokio::task::spawn_blocking(move || c.stop()).await??;
    }
    let counts = result?;
    printer::line(format!("Re-encrypted with {}:", new_key_file.display()));
    for (what, n) in counts {
        printer::line(format!("  {what}: {n}"));
    }
    printer::line(format!(
        "Start the servers with --key-file {} (or server.key_file); keep {} until they run.",
        new_key_file.display(),
        old.display()
    ));
    Ok(Outcome::Ok)
}
