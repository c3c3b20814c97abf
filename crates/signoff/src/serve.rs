//! `signoff serve`: the engine and the server in one process; `signoff token`: API tokens.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::json;
use signoff_core::Timestamp;
use signoff_runtime::access::{SECRET_PREFIX, Scope};
use signoff_server::AppState;

use crate::Global;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "SIGNOFF_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A reactor this server does not run, because a `signoff worker NAME` runs it (repeat
    /// for several).
    #[arg(long = "skip-reactor", value_name = "NAME")]
    pub skip_reactors: Vec<String>,
}

pub async fn serve(g: &Global, args: ServeArgs) -> anyhow::Result<ExitCode> {
    for name in args.skip_reactors.iter().filter(|n| *n != "discord") {
        crate::worker::reactor_named(g, name)?;
    }
    let mut reactors: Vec<_> = g
        .reactors()?
        .into_iter()
        .filter(|r| !args.skip_reactors.iter().any(|name| name == r.name()))
        .collect();
    // Email made the key already if it is on; without email, links another process emailed
    // are answered here if its key file is at hand.
    let link_key = g.link_key(false)?;
    let runtime = Arc::new(g.open().await?);
    if args.skip_reactors.iter().any(|name| name == "starts") {
        runtime.leave_reactions_to_starts();
    }
    let bot = crate::discord::bot(g, &runtime).await?;
    let bot = bot.map(|(bot, own)| {
        if !args.skip_reactors.iter().any(|name| name == "discord") {
            reactors.extend(own);
        }
        bot
    });
    // Listening for SIGTERM before the banner says it stops on it (see `worker::run`).
    let stop = futures::FutureExt::shared(Box::pin(stop_signal()?));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr()?;
    let tokens = runtime.tokens().len();
    eprintln!(
        "signoff serve: {} workflow(s) from {}, {} people from {}, log {}",
        runtime.definitions().len(),
        g.workflows.display(),
        runtime.directory().people().count(),
        g.people.display(),
        g.url()?,
    );
    eprintln!("  open:     http://{address}/  (sign in with a token)");
    eprintln!("  API:      http://{address}/api/v1  (docs at http://{address}/api/docs)");
    eprintln!("  metrics:  http://{address}/metrics");
    if tokens == 0 {
        eprintln!(
            "  no API token yet: `signoff token issue PERSON` makes one (PERSON from {})",
            g.people.display()
        );
    }
    eprintln!(
        "  reactors: {}",
        reactors
            .iter()
            .map(|r| r.name().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "  decision links: {}",
        if link_key.is_some() {
            format!(
                "answered at http://{address}/links/… (key {})",
                g.link_key_file.display()
            )
        } else {
            format!(
                "off (no key at {}; `signoff keys init` makes one)",
                g.link_key_file.display()
            )
        }
    );
    eprintln!(
        "  discord:  {}",
        if bot.is_some() {
            format!("the bot connects through {}", g.discord_api_url)
        } else {
            "off (SIGNOFF_DISCORD_TOKEN sets the bot's token)".to_owned()
        }
    );
    eprintln!("  Ctrl-C (or SIGTERM) stops, after the requests in flight.");
    let state = AppState::new(runtime).with_link_key(link_key);
    let served = signoff_server::serve_with(listener, state, reactors, stop.clone());
    crate::discord::alongside(bot, stop, served).await??;
    eprintln!("signoff serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM (how systemd and Kubernetes stop a service), so that both
/// drain the server instead of killing it mid-request.
pub(crate) fn stop_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    // Both handlers are in place when this returns (not when the future is first polled).
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("cannot handle SIGTERM: {e}"))?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[derive(clap::Subcommand)]
pub enum Token {
    /// Issue a token acting as a person (or service) of the directory; prints its secret once.
    Issue {
        /// The directory id it acts as.
        owner: String,
        /// What it is for, e.g. "laptop" or "ci-pipeline".
        #[arg(long, default_value = "api")]
        name: String,
        /// When it stops working (RFC 3339), e.g. 2027-01-01T00:00:00Z.
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
        /// It may read (status, timelines, the live stream, `signoff wait`) and change nothing:
        /// every other request is refused (403) and recorded in the security stream.
        #[arg(long)]
        read_only: bool,
        /// It reaches this workflow only (repeat for several): instances of any other are
        /// neither read nor changed through it, and it cannot export or verify the whole log.
        #[arg(long = "workflow", value_name = "WORKFLOW")]
        only: Vec<String>,
    },
    /// Revoke a token by id; it never works again.
    Revoke {
        /// Its id (`signoff token list`).
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List tokens (ids, owners, expiry, revocation; never secrets).
    List,
}

pub async fn token(g: &Global, command: Token) -> anyhow::Result<ExitCode> {
    let rt = g.open().await?;
    // Who issues is recorded: `--as` when given, else the operator at the machine.
    let by = g.person.as_deref().unwrap_or("system");
    match command {
        Token::Issue {
            owner,
            name,
            expires,
            read_only,
            only,
        } => {
            let expires_at = expires
                .as_deref()
                .map(Timestamp::parse_rfc3339)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
            let issued = rt
                .issue_token(
                    &owner,
                    &name,
                    expires_at,
                    &Scope {
                        read_only,
                        workflows: only,
                    },
                    by,
                )
                .await?;
            if g.json {
                outln!("{}", serde_json::to_string(&issued)?)?;
            } else {
                outln!("{}", issued.secret.expose())?;
                eprintln!(
                    "token {} for {owner} ({name}); the secret above is shown once. Send it as \
                     `Authorization: Bearer {SECRET_PREFIX}…`.",
                    issued.token.id
                );
            }
        }
        Token::Revoke { id, reason } => {
            rt.revoke_token(&id, &reason, by).await?;
            if g.json {
                outln!("{}", json!({"revoked": id}))?;
            } else {
                outln!("revoked {id}")?;
            }
        }
        Token::List => {
            let tokens = rt.tokens();
            if g.json {
                outln!("{}", serde_json::to_string(&tokens)?)?;
            }
            for t in tokens.iter().filter(|_| !g.json) {
                let state = match (t.revoked_at, t.expires_at) {
                    (Some(at), _) => format!("revoked {}", at.to_rfc3339()),
                    (None, Some(at)) => format!("expires {}", at.to_rfc3339()),
                    (None, None) => "no expiry".to_owned(),
                };
                let state = if t.read_only {
                    format!("read-only, {state}")
                } else {
                    state
                };
                let state = if t.workflows.is_empty() {
                    state
                } else {
                    format!("{} only, {state}", t.workflows.join(", "))
                };
                // Accurate to the hour: a use is recorded when the last record is an hour old.
                let used = t.last_used.map_or_else(
                    || "never used".to_owned(),
                    |at| format!("last used {}", at.to_rfc3339()),
                );
                outln!("{}  {:<12} {:<16} {state}, {used}", t.id, t.owner, t.name)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
