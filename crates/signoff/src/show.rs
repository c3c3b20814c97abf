//! The commands that read: status, inbox, timeline, replay, export, notifications.

use std::io::Write;
use std::process::ExitCode;

use futures::StreamExt;
use serde_json::json;
use signoff_core::Timestamp;
use signoff_core::engine::{Instance, Status, View};
use signoff_runtime::timeline::Line;
use signoff_runtime::{Entry, Runtime, runtime::instance_stream};

use signoff_runtime::access::InstanceSummary;
use signoff_runtime::queries::Notification;

use crate::Global;
use crate::client::Client;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The instance id; without it, the running instances are listed.
    instance: Option<String>,
}

fn status_word(status: &Status) -> String {
    match status {
        Status::New => "not started".to_owned(),
        Status::Running => "running".to_owned(),
        Status::Ended {
            outcome,
            success,
            at,
        } => format!(
            "ended: {outcome}{} at {}",
            if *success { "" } else { " (not a success)" },
            at.to_rfc3339()
        ),
        Status::Cancelled { reason, at } => {
            format!("cancelled at {}: {reason}", at.to_rfc3339())
        }
    }
}

/// An instance's state for people.
fn print_state(state: &Instance, view: &View) -> std::io::Result<()> {
    outln!("instance   {}", state.id)?;
    outln!("title      {}", view.title)?;
    outln!("workflow   {} ({})", state.workflow, state.definition)?;
    outln!("requester  {}", state.requester)?;
    outln!("started    {}", state.started_at.to_rfc3339())?;
    outln!("status     {}", status_word(&state.status))?;
    for (step, failure) in state.failures() {
        outln!(
            "stopped    at {step}: {} `{}` could not be evaluated at version {}: {}",
            failure.rule.describe(),
            failure.expression,
            failure.version,
            failure.error
        )?;
        outln!(
            "           fix the definition, then an operator retries: signoff retry {} {step} \
             (or the requester cancels: signoff cancel {} --reason ...)",
            state.id,
            state.id
        )?;
    }
    for (step, active) in &state.active {
        let mut line = format!("  at {step}");
        let waiting = active.waiting_for();
        if !waiting.is_empty() {
            line.push_str(&format!(", waiting for {}", waiting.join(", ")));
        }
        if let Some(gate) = &active.gate {
            line.push_str(&format!(" ({})", gate.progress().join("; ")));
            let short = gate.opened.short();
            if !short.is_empty() {
                line.push_str(&format!(
                    "; BLOCKED, cannot close as it stands: {}",
                    short.join("; ")
                ));
            }
            if let Some(deadline) = gate.opened.deadline {
                line.push_str(&format!(", deadline {}", deadline.to_rfc3339()));
            }
            for (who, d) in &gate.decisions {
                line.push_str(&format!("; {who}: {:?}", d.verdict).to_lowercase());
            }
        }
        outln!("{line}")?;
        for task in &active.tasks {
            let mark = match &task.closed {
                None => "[ ]".to_owned(),
                Some((signoff_core::engine::TaskStatus::Done, _, by)) => format!("[x] by {by}"),
                Some((signoff_core::engine::TaskStatus::NotDoing, note, by)) => {
                    format!("[-] not doing, by {by}: {note}")
                }
            };
            outln!(
                "      {mark} {} ({})",
                task.opened.title,
                task.opened.owners.join(", ")
            )?;
        }
    }
    let text = view.text("  ");
    if !text.is_empty() {
        outln!("answers")?;
        outln!("{}", text.trim_end())?;
    }
    for link in &state.links {
        outln!(
            "link       {} {} ({})",
            link.workflow,
            link.instance,
            link.relation
        )?;
    }
    Ok(())
}

/// An instance's state as JSON, with what people are shown of it and that view's hash (the
/// same fields through the server: [`print_view`]).
fn state_json(rt: &Runtime, entry: &Entry) -> serde_json::Value {
    let view = rt.view_of(entry);
    let mut value = serde_json::to_value(&entry.state).unwrap_or_default();
    value["view_hash"] = json!(view.hash());
    value["view"] = serde_json::to_value(&view).unwrap_or_default();
    value
}

/// One running instance's line in `status` without an id, from its list row (as the API
/// lists it, or as the read model would hold it).
fn print_running(row: &InstanceSummary) -> std::io::Result<()> {
    let at: Vec<String> = row
        .current_steps
        .iter()
        .map(|step| {
            if row.stopped.contains(step) {
                format!("{step} (stopped)")
            } else {
                step.clone()
            }
        })
        .collect();
    outln!(
        "{}  {:<24} {:<12} at {}",
        row.id,
        row.workflow,
        row.requester,
        at.join(", ")
    )
}

/// An instance as the server shows it: its state for people, or its JSON as the direct mode
/// prints it (the state with its `view_hash`).
fn print_view(g: &Global, view: &serde_json::Value, at: Option<Timestamp>) -> anyhow::Result<()> {
    let mut state = view["state"].clone();
    if g.json {
        state["view_hash"] = view["view_hash"].clone();
        state["view"] = view["view"].clone();
        outln!("{state}")?;
        return Ok(());
    }
    let unreadable = |e: serde_json::Error| {
        anyhow::anyhow!("the server's instance is not one this CLI reads: {e}")
    };
    let shown: View = serde_json::from_value(view["view"].clone()).map_err(unreadable)?;
    let state: Instance = serde_json::from_value(state).map_err(unreadable)?;
    if let Some(at) = at {
        outln!("as of {}:", at.to_rfc3339())?;
    }
    print_state(&state, &shown)?;
    Ok(())
}

async fn status_remote(
    g: &Global,
    client: &Client,
    instance: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if let Some(id) = instance {
        print_view(g, &client.state(id, None).await?, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut running: Vec<InstanceSummary> = client
        .get(
            "/api/v1/instances",
            &[("status", "running"), ("limit", "1000")],
        )
        .await?;
    running.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    if g.json {
        outln!("{}", serde_json::to_string(&running)?)?;
    } else if running.is_empty() {
        outln!("no instance is running")?;
    } else {
        for row in &running {
            print_running(row)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(g: &Global, args: StatusArgs) -> anyhow::Result<ExitCode> {
    if let Some(client) = Client::of(g)? {
        return status_remote(g, &client, args.instance.as_deref()).await;
    }
    let rt = g.open().await?;
    let Some(id) = args.instance else {
        let mut running = rt.running();
        running.sort_by(|a, b| {
            (a.state.started_at, &a.state.id).cmp(&(b.state.started_at, &b.state.id))
        });
        let rows: Vec<InstanceSummary> = running
            .iter()
            .map(|e| InstanceSummary::of(&e.state))
            .collect();
        if g.json {
            outln!("{}", serde_json::to_string(&rows)?)?;
        } else if rows.is_empty() {
            outln!("no instance is running")?;
        } else {
            for row in &rows {
                print_running(row)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let entry = rt.load(&id).await?;
    if g.json {
        outln!("{}", state_json(&rt, &entry))?;
    } else {
        print_state(&entry.state, &rt.view_of(&entry))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct InboxArgs {
    /// The person (default: --as). Named apart from the global `--as` (clap would take one
    /// for the other).
    #[arg(value_name = "PERSON")]
    whose: Option<String>,
}

pub async fn inbox(g: &Global, args: InboxArgs) -> anyhow::Result<ExitCode> {
    let (person, items) = if let Some(client) = Client::of(g)? {
        // The server shows the token's person their own inbox, and nobody else's.
        let me: serde_json::Value = client.get("/api/v1/me", &[]).await?;
        let me = me["id"].as_str().unwrap_or_default().to_owned();
        if let Some(other) = args.whose.as_ref().filter(|p| **p != me) {
            anyhow::bail!(
                "the token is {me}'s: the server shows {me}'s inbox, not {other}'s (leave out \
                 the person, or use {other}'s token)"
            );
        }
        let items: Vec<signoff_runtime::queries::InboxItem> =
            client.get("/api/v1/inbox", &[]).await?;
        (me, items)
    } else {
        let person = match &args.whose {
            Some(p) => p.clone(),
            None => g.actor()?.to_owned(),
        };
        let rt = g.open().await?;
        if rt.directory().person(&person).is_none() {
            anyhow::bail!("{person:?} is not a person of {}", g.people.display());
        }
        let items = rt.inbox(&person);
        (person, items)
    };
    if g.json {
        outln!("{}", serde_json::to_string(&items)?)?;
    } else if items.is_empty() {
        outln!("nothing waits for {person}")?;
    } else {
        for item in &items {
            let deadline = item
                .deadline
                .map(|d| format!("  due {}", d.to_rfc3339()))
                .unwrap_or_default();
            let tasks = if item.tasks.is_empty() {
                String::new()
            } else {
                format!("  tasks: {}", item.tasks.join(", "))
            };
            let step = if item.title.is_empty() {
                &item.step
            } else {
                &item.title
            };
            outln!(
                "{}  {}: {step} [{}]{deadline}{tasks}",
                item.instance,
                item.instance_title,
                item.kind,
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct TimelineArgs {
    /// The instance id.
    instance: String,
}

async fn timeline_lines(rt: &Runtime, id: &str) -> anyhow::Result<Vec<Line>> {
    Ok(rt
        .instance_events(id)
        .await?
        .iter()
        .map(|(record, event)| Line::new(record, event))
        .collect())
}

pub async fn timeline(g: &Global, args: TimelineArgs) -> anyhow::Result<ExitCode> {
    let lines = if let Some(client) = Client::of(g)? {
        let id = crate::client::segment(&args.instance)?;
        client
            .get::<Vec<Line>>(&format!("/api/v1/instances/{id}/timeline"), &[])
            .await?
    } else {
        let rt = g.open_for_reading().await?;
        timeline_lines(&rt, &args.instance).await?
    };
    let mut out = std::io::stdout().lock();
    for line in &lines {
        if g.json {
            writeln!(out, "{}", serde_json::to_string(line)?)?;
        } else {
            let cause = line
                .cause
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            writeln!(
                out,
                "{}  #{:<4} {:<10} {:<8} {}{cause}",
                line.time.to_rfc3339(),
                line.version,
                line.actor,
                line.channel,
                line.summary
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The instance id.
    instance: String,
    /// The moment, RFC 3339 (e.g. 2026-11-23T10:15:00Z).
    #[arg(long)]
    at: String,
}

pub async fn replay(g: &Global, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let at = Timestamp::parse_rfc3339(&args.at).map_err(|e| {
        anyhow::anyhow!(
            "--at {:?} is not an RFC 3339 time ({e}); e.g. 2026-11-23T10:15:00Z",
            args.at
        )
    })?;
    if let Some(client) = Client::of(g)? {
        let view = client.state(&args.instance, Some(&at.to_rfc3339())).await?;
        print_view(g, &view, Some(at))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rt = g.open().await?;
    let entry = rt.state_at(&args.instance, at).await?;
    if g.json {
        outln!("{}", state_json(&rt, &entry))?;
    } else {
        outln!("as of {}:", at.to_rfc3339())?;
        print_state(&entry.state, &rt.view_of(&entry))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Only this instance's events (default: the whole log).
    #[arg(long)]
    instance: Option<String>,
    /// Start at this global sequence (whole-log export only).
    #[arg(long, default_value_t = 1)]
    from: u64,
}

pub async fn export(g: &Global, args: ExportArgs) -> anyhow::Result<ExitCode> {
    if let Some(client) = Client::of(g)? {
        if args.from != 1 {
            anyhow::bail!(
                "--from is not taken with --server: the API exports a whole log or one instance"
            );
        }
        let query: Vec<(&str, &str)> = match &args.instance {
            Some(id) => vec![("instance", id.as_str())],
            None => Vec::new(),
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        client.get_into("/api/v1/export", &query, &mut out).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let rt = g.open_for_reading().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if let Some(id) = &args.instance {
        let stream = instance_stream(id)?;
        let mut next = 1;
        loop {
            let page = rt.log().read_stream(&stream, next, 4_096).await?;
            if page.is_empty() {
                break;
            }
            for record in &page {
                writeln!(out, "{}", record.to_cloudevent_json())?;
            }
            next += page.len() as u64;
        }
        if next == 1 {
            anyhow::bail!("there is no instance {id:?}");
        }
    } else {
        let mut events = std::pin::pin!(signoff_store::read_all_stream(
            rt.log().clone(),
            args.from.saturating_sub(1)
        ));
        while let Some(record) = events.next().await {
            writeln!(out, "{}", record?.to_cloudevent_json())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct NotificationsArgs {
    /// Only those to this person. (Named apart from the global `--as`, which clap would
    /// otherwise take for it.)
    #[arg(long = "person", value_name = "PERSON")]
    to: Option<String>,
    /// Only those of this instance.
    #[arg(long)]
    instance: Option<String>,
}

pub async fn notifications(g: &Global, args: NotificationsArgs) -> anyhow::Result<ExitCode> {
    let list: Vec<Notification> = if let Some(client) = Client::of(g)? {
        let mut query = Vec::new();
        if let Some(to) = &args.to {
            query.push(("person", to.as_str()));
        }
        if let Some(instance) = &args.instance {
            query.push(("instance", instance.as_str()));
        }
        client.get("/api/v1/notifications", &query).await?
    } else {
        let rt = g.open_for_reading().await?;
        if let Some(person) = &args.to {
            rt.actor(person)?;
        }
        let list = match &args.instance {
            Some(id) => rt.notifications_of(id).await?,
            None => rt.notifications(args.to.as_deref()).await?,
        };
        list.into_iter()
            .filter(|n| args.to.as_ref().is_none_or(|p| n.to.contains(p)))
            .collect()
    };
    if g.json {
        let mut out = std::io::stdout().lock();
        for n in &list {
            writeln!(out, "{}", serde_json::to_string(n)?)?;
        }
    } else if list.is_empty() {
        outln!("no notifications")?;
    } else {
        for n in &list {
            outln!(
                "{}  {}  to {}  [{}] {}",
                n.at.to_rfc3339(),
                n.instance,
                n.to.join(", "),
                n.reason,
                n.subject
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
