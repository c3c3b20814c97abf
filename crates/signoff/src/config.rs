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
//! smtp_url: smtp://smtp.example.com:587?tls=required
//! smtp_user: signoff
//! email_from: signoff <signoff@example.com>
//! public_url: https://signoff.example.com
//! link_key_file: /etc/signoff/link.key
//! discord_token: …            # better in SIGNOFF_DISCORD_TOKEN
//! discord_guild: 123456789012345678
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
    smtp_url: Option<String>,
    smtp_user: Option<String>,
    smtp_password: Option<String>,
    email_from: Option<String>,
    public_url: Option<String>,
    link_key_file: Option<PathBuf>,
    discord_token: Option<String>,
    discord_api_url: Option<String>,
    discord_guild: Option<u64>,
}

impl File {
    /// Reads a configuration file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        serde_saphyr::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: {e}\n  hint: the keys are database, workflows, people, evidence, listen, \
                 smtp_url, smtp_user, smtp_password, email_from, public_url, link_key_file, \
                 discord_token, discord_api_url, discord_guild",
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
    if let Some(v) = file.smtp_url.filter(|_| defaulted(matches, "smtp_url")) {
        g.smtp_url = Some(v);
    }
    if let Some(v) = file.smtp_user.filter(|_| defaulted(matches, "smtp_user")) {
        g.smtp_user = Some(v);
    }
    if let Some(v) = file
        .smtp_password
        .filter(|_| defaulted(matches, "smtp_password"))
    {
        g.smtp_password = Some(v);
    }
    if let Some(v) = file.email_from.filter(|_| defaulted(matches, "email_from")) {
        g.email_from = v;
    }
    if let Some(v) = file.public_url.filter(|_| defaulted(matches, "public_url")) {
        g.public_url = v;
    }
    if let Some(v) = file
        .link_key_file
        .filter(|_| defaulted(matches, "link_key_file"))
    {
        g.link_key_file = v;
    }
    if let Some(v) = file
        .discord_token
        .filter(|_| defaulted(matches, "discord_token"))
    {
        g.discord_token = Some(v);
    }
    if let Some(v) = file
        .discord_api_url
        .filter(|_| defaulted(matches, "discord_api_url"))
    {
        g.discord_api_url = v;
    }
    if let Some(v) = file
        .discord_guild
        .filter(|_| defaulted(matches, "discord_guild"))
    {
        g.discord_guild = Some(v);
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
