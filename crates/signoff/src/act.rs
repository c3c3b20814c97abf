//! The commands that act on an instance: start, submit, decide, complete… With `--server`, each
//! goes through the server's API as the token's person; without, it opens the database and
//! runs as the person `--as` names, recorded with the channel `cli-direct:<os user>`. Either
//! way it prints what it recorded, the same.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Map, Value, json};
use signoff_core::engine::{Command, TaskStatus, Verdict};
use signoff_runtime::Applied;
use signoff_runtime::timeline::summary;

use crate::Global;
use crate::client::Client;

/// The channel of commands run directly on the database, where `--as` is taken on trust: an
/// auditor tells them from those a token proved (`api`), and sees which account of the
/// machine ran them.
pub const DIRECT: &str = "cli-direct";

/// `cli-direct:<user>`: the operating-system account, as the environment names it (`USER`,
/// else `LOGNAME`), reduced to printable ASCII.
pub fn direct_channel() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|user| {
            user.chars()
                .filter(char::is_ascii_graphic)
                .take(64)
                .collect::<String>()
        })
        .find(|user| !user.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{DIRECT}:{user}")
}

/// Values given as `--values JSON` and `--set NAME=VALUE` (repeatable).
#[derive(clap::Args)]
pub struct Values {
    /// All values as one JSON object, e.g. '{"risk":"high","services":["api"]}'.
    #[arg(long, value_name = "JSON")]
    values: Option<String>,
    /// One value: NAME=VALUE. VALUE is read as JSON when it is JSON (3, true, ["a","b"],
    /// "quoted text") and as text otherwise.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

impl Values {
    fn to_map(&self) -> anyhow::Result<Map<String, Value>> {
        let mut map = match &self.values {
            None => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    anyhow::bail!("--values must be a JSON object, e.g. '{{\"risk\":\"low\"}}'")
                }
                Err(e) => anyhow::bail!("--values is not valid JSON: {e}"),
            },
        };
        for item in &self.set {
            let Some((name, value)) = item.split_once('=') else {
                anyhow::bail!("--set {item:?} needs the form NAME=VALUE");
            };
            let name = name.trim();
            if name.is_empty() {
                anyhow::bail!("--set {item:?} has no name before '='");
            }
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            map.insert(name.to_owned(), value);
        }
        Ok(map)
    }
}

fn print_applied(g: &Global, what: &str, applied: &Applied) -> anyhow::Result<ExitCode> {
    if g.json {
        outln!(
            "{}",
            json!({
                "instance": applied.instance,
                "version": applied.version,
                "deduplicated": applied.deduplicated,
                "events": applied.events,
            })
        )?;
    } else {
        if applied.deduplicated {
            outln!("{what}: already recorded (instance {})", applied.instance)?;
        } else {
            outln!("{what}: instance {}", applied.instance)?;
        }
        for event in &applied.events {
            outln!("  {}", summary(event))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn execute(
    g: &Global,
    what: &str,
    instance: &str,
    command: Command,
    key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let applied = match Client::of(g)? {
        Some(client) => client.execute(instance, &command, key).await?,
        None => {
            let person = g.actor()?;
            let rt = g.open().await?;
            rt.execute(instance, command, person, &direct_channel(), key)
                .await?
        }
    };
    print_applied(g, what, &applied)
}

#[derive(clap::Args)]
pub struct StartArgs {
    /// The workflow id (`signoff workflows` lists them).
    workflow: String,
    /// The instance's input.
    #[command(flatten)]
    input: Values,
    /// Makes the start safe to retry: a second run with the same key and the same input starts
    /// nothing and prints the first instance.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

pub async fn start(g: &Global, args: StartArgs) -> anyhow::Result<ExitCode> {
    let input = Value::Object(args.input.to_map()?);
    let key = args.idempotency_key.as_deref();
    let applied = match Client::of(g)? {
        Some(client) => client.start(&args.workflow, input, key).await?,
        None => {
            let person = g.actor()?;
            let rt = g.open().await?;
            rt.start_for_client(&args.workflow, input, person, &direct_channel(), key)
                .await?
        }
    };
    if !g.json {
        // The id first, alone on its line, for shell scripts that capture it.
        outln!("{}", applied.instance)?;
        for event in &applied.events {
            outln!("  {}", summary(event))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    print_applied(g, "started", &applied)
}

/// An instance and one of its steps.
#[derive(clap::Args)]
pub struct Target {
    /// The instance id.
    instance: String,
    /// The step id.
    step: String,
    /// Makes the command safe to retry: a second run with the same key records nothing.
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    values: Values,
}

pub async fn submit(g: &Global, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Submit {
        step: args.target.step.clone(),
        values: args.values.to_map()?,
    };
    let t = &args.target;
    execute(
        g,
        "submitted",
        &t.instance,
        command,
        t.idempotency_key.as_deref(),
    )
    .await
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum VerdictArg {
    Approve,
    Reject,
}

#[derive(clap::Args)]
pub struct DecideArgs {
    #[command(flatten)]
    target: Target,
    /// approve or reject.
    verdict: VerdictArg,
    /// Why (the workflow may require it, with a minimum length).
    #[arg(long, short = 'j', default_value = "")]
    justification: String,
    /// The hash of what you were shown (`signoff status --json` gives `view_hash`); when
    /// given, the decision is refused if the instance changed since.
    #[arg(long)]
    shown: Option<String>,
}

pub async fn decide(g: &Global, args: DecideArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Decide {
        step: args.target.step.clone(),
        verdict: match args.verdict {
            VerdictArg::Approve => Verdict::Approve,
            VerdictArg::Reject => Verdict::Reject,
        },
        justification: args.justification,
        shown: args.shown,
    };
    let t = &args.target;
    execute(
        g,
        "decided",
        &t.instance,
        command,
        t.idempotency_key.as_deref(),
    )
    .await
}

#[derive(clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    target: Target,
    /// Why.
    #[arg(long, default_value = "")]
    reason: String,
}

pub async fn revoke(g: &Global, args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Revoke {
        step: args.target.step.clone(),
        reason: args.reason,
    };
    let t = &args.target;
    execute(
        g,
        "revoked",
        &t.instance,
        command,
        t.idempotency_key.as_deref(),
    )
    .await
}

#[derive(clap::Args)]
pub struct DelegateArgs {
    #[command(flatten)]
    target: Target,
    /// To whom (another holder of the role).
    to: String,
    /// Why.
    #[arg(long, default_value = "")]
    reason: String,
}

pub async fn delegate(g: &Global, args: DelegateArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Delegate {
        step: args.target.step.clone(),
        to: args.to,
        reason: args.reason,
    };
    let t = &args.target;
    execute(
        g,
        "delegated",
        &t.instance,
        command,
        t.idempotency_key.as_deref(),
    )
    .await
}

#[derive(clap::Args)]
pub struct CompleteArgs {
    #[command(flatten)]
    target: Target,
    /// The task id.
    item: String,
    /// Mark it as not being done, with this reason (instead of done).
    #[arg(long, value_name = "REASON")]
    not_doing: Option<String>,
    /// A note (what was done, a link).
    #[arg(long, default_value = "")]
    note: String,
}

pub async fn complete(g: &Global, args: CompleteArgs) -> anyhow::Result<ExitCode> {
    let (status, note) = match args.not_doing {
        Some(reason) => (TaskStatus::NotDoing, reason),
        None => (TaskStatus::Done, args.note),
    };
    let command = Command::Complete {
        step: args.target.step.clone(),
        item: args.item,
        status,
        note,
    };
    let t = &args.target;
    execute(
        g,
        "completed",
        &t.instance,
        command,
        t.idempotency_key.as_deref(),
    )
    .await
}

#[derive(clap::Args)]
pub struct PostStatusArgs {
    /// The instance id.
    instance: String,
    /// The update.
    text: String,
    /// The step whose cadence it answers (default: any with a cadence).
    #[arg(long)]
    step: Option<String>,
}

pub async fn post_status(g: &Global, args: PostStatusArgs) -> anyhow::Result<ExitCode> {
    let command = Command::PostStatus {
        step: args.step,
        text: args.text,
    };
    execute(g, "posted", &args.instance, command, None).await
}

#[derive(clap::Args)]
pub struct CommentArgs {
    /// The instance id.
    instance: String,
    /// The comment.
    text: String,
}

pub async fn comment(g: &Global, args: CommentArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Comment { text: args.text };
    execute(g, "commented", &args.instance, command, None).await
}

#[derive(clap::Args)]
pub struct SignalArgs {
    /// The instance id.
    instance: String,
    /// The signal's name.
    name: String,
}

pub async fn signal(g: &Global, args: SignalArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Signal { name: args.name };
    execute(g, "signalled", &args.instance, command, None).await
}

#[derive(clap::Args)]
pub struct AttachArgs {
    /// The instance id.
    instance: String,
    /// The file (a plan output, a diff, a report).
    file: PathBuf,
    /// The name it is shown under (default: the file's name).
    #[arg(long)]
    name: Option<String>,
    /// Its media type.
    #[arg(long, default_value = "application/octet-stream")]
    media_type: String,
}

pub async fn attach(g: &Global, args: AttachArgs) -> anyhow::Result<ExitCode> {
    let client = crate::client::Client::of(g)?;
    let file = args.file.clone();
    // Off the async threads: evidence may be large.
    let content = tokio::task::spawn_blocking(move || std::fs::read(&file))
        .await?
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let name = args.name.unwrap_or_else(|| {
        args.file.file_name().map_or_else(
            || "evidence".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    let applied = match client {
        Some(client) => {
            client
                .attach(&args.instance, &name, &args.media_type, content)
                .await?
        }
        None => {
            let person = g.actor()?;
            let rt = g.open().await?;
            let actor = rt.actor(person)?;
            rt.attach(
                &args.instance,
                &name,
                &args.media_type,
                &content,
                &actor,
                &direct_channel(),
            )
            .await?
        }
    };
    print_applied(g, "attached", &applied)
}

#[derive(clap::Args)]
pub struct CancelArgs {
    /// The instance id.
    instance: String,
    /// Why.
    #[arg(long)]
    reason: String,
}

pub async fn cancel(g: &Global, args: CancelArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Cancel {
        reason: args.reason,
    };
    execute(g, "cancelled", &args.instance, command, None).await
}

#[derive(clap::Args)]
pub struct RetryArgs {
    /// The instance id.
    instance: String,
    /// The step a rule stopped (`signoff status ID` names it).
    step: String,
}

pub async fn retry(g: &Global, args: RetryArgs) -> anyhow::Result<ExitCode> {
    let command = Command::Retry { step: args.step };
    execute(g, "retried", &args.instance, command, None).await
}
