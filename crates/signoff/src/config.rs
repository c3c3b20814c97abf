//! The configuration file (`--config FILE` or `SIGNOFF_CONFIG`): YAML with the same settings as
//! the flags. A flag wins over its environment variable, which wins over the file, which wins
//! over the default.
//!
//! ```yaml
//! database: postgres://signoff@db.internal/signoff
//! workflows: /etc/signoff/workflows
//! people: /etc/signoff/people.yaml
//! evidence: /var/lib/signoff/evidence
//! listen: 0.0.0.0:8080
//! ```

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

/// The settings a file may hold. No `Debug`: the database URL may carry a password.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub database: Option<String>,
    workflows: Option<PathBuf>,
    people: Option<PathBuf>,
    evidence: Option<PathBuf>,
    listen: Option<String>,
}

impl File {
    /// Reads a configuration file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        serde_saphyr::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}\n  hint: the keys are database, workflows, people, evidence, listen",
                path.display()
            )
        })
    }
}

/// Whether the value of `id` came from its default (not a flag, not the environment).
pub fn defaulted(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::DefaultValue) | None
    )
}

/// Fills the settings the command line and the environment left at their defaults.
pub fn apply(file: File, matches: &ArgMatches, cli: &mut crate::Cli) -> anyhow::Result<()> {
    let g = &mut cli.global;
    if let Some(v) = file.database.filter(|_| defaulted(matches, "database")) {
        g.database = v;
    }
    if let Some(v) = file.workflows.filter(|_| defaulted(matches, "workflows")) {
        g.workflows = v;
    }
    if let Some(v) = file.people.filter(|_| defaulted(matches, "people")) {
        g.people = v;
    }
    if let Some(v) = file.evidence.filter(|_| defaulted(matches, "evidence")) {
        g.evidence = v;
    }
    if let (Some(listen), crate::Command::Serve(args), Some(("serve", sub))) =
        (file.listen, &mut cli.command, matches.subcommand())
        && defaulted(sub, "listen")
    {
        args.listen = listen
            .parse()
            .map_err(|e| anyhow::anyhow!("listen: {listen:?} is not ADDRESS:PORT ({e})"))?;
    }
    Ok(())
}
