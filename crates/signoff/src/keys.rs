//! The deployment's key for decision links in emails: a file outside the log
//! (`--link-key-file`, `SIGNOFF_LINK_KEY_FILE`), readable by its owner alone. `signoff keys
//! init` makes one; a process that sends email makes one where none is. Every process that
//! sends email or serves the link pages must read the same file.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use signoff_core::link::{KEY_LEN, LinkKey};

use crate::Global;

#[derive(Subcommand)]
pub enum Keys {
    /// Make the key decision links are signed with (--link-key-file, SIGNOFF_LINK_KEY_FILE).
    Init {
        /// Replace a key that exists: every decision link already emailed stops working.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(g: &Global, command: &Keys) -> anyhow::Result<ExitCode> {
    match command {
        Keys::Init { force } => {
            let path = &g.link_key_file;
            if path.exists() && !force {
                anyhow::bail!(
                    "{} holds a link key already; replacing it makes every decision link already \
                     emailed stop working (add --force to do so)",
                    path.display()
                );
            }
            if path.exists() {
                std::fs::remove_file(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            write_new(path)?;
            println!("{}: a new link key (readable by you alone)", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The link key of `path`: read if the file is there, made there if `create`, else none.
pub fn read_or_create(path: &Path, create: bool) -> anyhow::Result<Option<LinkKey>> {
    match std::fs::read_to_string(path) {
        Ok(text) => LinkKey::from_hex(&text).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e} (`signoff keys init --force` makes a new one)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = match write_new(path) {
                Ok(key) => key,
                // Another process made it first: use theirs.
                Err(_) if path.exists() => return read_or_create(path, false),
                Err(e) => return Err(e),
            };
            tracing::warn!(file = %path.display(), "made a new key for decision links; every process that sends email or serves must read this file");
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

/// Writes a new random key to `path`, which must not exist, readable by its owner alone.
fn write_new(path: &Path) -> anyhow::Result<LinkKey> {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let key = LinkKey::new(bytes);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    writeln!(file, "{}", key.to_hex()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(key)
}
