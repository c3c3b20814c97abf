//! The CLI as a client of a signoff server (`--server URL --token TOKEN`): commands go through
//! the HTTP API as the token's person, so the CLI needs neither the database nor `--as`, and
//! the server checks identity and rights as it does for every other client.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use signoff_core::engine::{Command, Instance, InstanceEvent, Status};
use signoff_runtime::Applied;

use crate::Global;

/// How long one request may take before the CLI gives up on it (the live stream excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A signoff server and the token to act with.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
}

/// A problem document the server answered with (RFC 9457), kept as the server said it.
#[derive(Debug, Deserialize)]
pub struct Problem {
    /// `/problems/<slug>`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// The sentence for a person.
    #[serde(default)]
    pub detail: String,
    /// The rule that refused, when one did (`forbidden`, `closed`, `read-only`…).
    #[serde(default)]
    pub rule: Option<String>,
    /// Every problem, for a request with several.
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

/// One of several problems.
#[derive(Debug, Deserialize)]
pub struct FieldError {
    /// Where.
    pub field: String,
    /// What.
    pub detail: String,
}

impl Problem {
    /// Whether this is the engine refusing what was asked (rights, a closed gate, a workflow's
    /// rule), which the CLI prints as "refused: …" in both modes.
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        // An engine's refusal names its rule; an unknown instance or workflow (an error in
        // direct mode too) names none.
        matches!(
            self.kind.rsplit('/').next(),
            Some("forbidden" | "invalid" | "closed" | "not-found")
        ) && self.rule.is_some()
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)?;
        for e in &self.errors {
            write!(f, "\n  {}: {}", e.field, e.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// `open(2)`'s flag not to follow a symbolic link (Linux's value).
const O_NOFOLLOW: i32 = 0o400_000;

/// The event types after which an instance runs no more.
const END_TYPES: [&str; 2] = ["signoff.instance.ended", "signoff.instance.cancelled"];

/// Whether the address is this machine, where a token may travel without TLS.
fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl Client {
    /// The client `--server` asks for, or the one `signoff login` saved when neither a server
    /// nor a database was named; `None` to open the database directly.
    ///
    /// # Errors
    /// `--as` given with a server, no token, an address that is not one, a login file others
    /// may read.
    pub fn of(g: &Global) -> anyhow::Result<Option<Self>> {
        if g.server.is_some() && g.database_chosen {
            bail!(
                "both a server (--server or SIGNOFF_SERVER) and a database (--database or \
                 SIGNOFF_DATABASE_URL) are named: act through one of them"
            );
        }
        // A database named means direct (a server with it was refused above).
        let saved = if g.database_chosen {
            None
        } else {
            Login::read()?
        };
        if g.server.is_none() && saved.is_none() && g.token.is_some() {
            bail!(
                "a token (--token or SIGNOFF_TOKEN) is for a server: name it with --server URL \
                 (or SIGNOFF_SERVER, or `signoff login URL`); directly on the database, --as \
                 says who acts"
            );
        }
        let (server, token) = match (&g.server, saved) {
            (Some(server), saved) => {
                // The saved token goes only to the server it was saved for.
                let saved = saved.filter(|l| l.server == *server).map(|l| l.token);
                (server.clone(), g.token.clone().or(saved))
            }
            (None, Some(login)) => (login.server, g.token.clone().or(Some(login.token))),
            (None, None) => return Ok(None),
        };
        if g.person.is_some() {
            bail!(
                "--as (or SIGNOFF_USER) is not taken with a server ({server}): the token says who \
                 you are; leave it out, or name the database (--database) to act on it directly \
                 (operators)"
            );
        }
        let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
            bail!(
                "--server needs a token: --token TOKEN, SIGNOFF_TOKEN, or `signoff login {server}` \
                 (an operator makes one with `signoff token issue PERSON`)"
            );
        };
        Self::new(&server, &token).map(Some)
    }

    /// A client of `server` acting with `token`.
    ///
    /// # Errors
    /// An address that is not one, or plain http beyond this machine.
    pub fn new(server: &str, token: &str) -> anyhow::Result<Self> {
        let base = Url::parse(server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .with_context(|| {
                format!("--server {server:?} is not an http:// or https:// address")
            })?;
        if base.scheme() == "http" && !is_loopback(&base) {
            bail!(
                "--server {server:?}: the token would cross the network in clear; use https:// \
                 (plain http is taken only for a loopback address)"
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // The live stream sends a keep-alive every 15 s: a connection silent for longer
            // is dead, even when no one closed it.
            .read_timeout(Duration::from_secs(45))
            // The token goes to the server named, and nowhere else: not through a proxy of
            // the environment (in clear for http), not after a redirect.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base,
            token: token.trim().to_owned(),
        })
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        Ok(self.base.join(path)?)
    }

    fn request(&self, method: Method, path: &str) -> anyhow::Result<RequestBuilder> {
        Ok(self
            .http
            .request(method, self.url(path)?)
            .bearer_auth(&self.token))
    }

    /// Sends a request; an answer that is not a success becomes its problem as an error.
    async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let response = request
            .send()
            .await
            .with_context(|| format!("could not reach the signoff server at {}", self.base))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(problem_of(response).await.into())
    }

    /// GETs JSON.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let request = self
            .request(Method::GET, path)?
            .query(query)
            .timeout(REQUEST_TIMEOUT);
        let response = self.send(request).await?;
        response.json().await.with_context(|| {
            format!("the server's answer to GET {path} is not what this CLI reads")
        })
    }

    /// GETs a body of any length (JSON Lines) into `out`, as it comes: no deadline on the
    /// whole, only on silence.
    pub async fn get_into(
        &self,
        path: &str,
        query: &[(&str, &str)],
        out: &mut impl std::io::Write,
    ) -> anyhow::Result<()> {
        let request = self.request(Method::GET, path)?.query(query);
        let mut body = self.send(request).await?.bytes_stream();
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk?)?;
        }
        out.flush()?;
        Ok(())
    }

    /// POSTs a command's body; what it recorded, as the direct mode reports it.
    async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> anyhow::Result<Applied> {
        let mut request = self
            .request(Method::POST, path)?
            .json(body)
            .timeout(REQUEST_TIMEOUT);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.applied(request, path).await
    }

    /// Sends a command; what it recorded, as the direct mode reports it.
    async fn applied(&self, request: RequestBuilder, path: &str) -> anyhow::Result<Applied> {
        let response = self.send(request).await?;
        let replayed = response
            .headers()
            .get("Idempotent-Replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        let result: CommandResult = response.json().await.with_context(|| {
            format!("the server's answer to POST {path} is not what this CLI reads")
        })?;
        Ok(Applied {
            instance: result.instance,
            // A replay records nothing: the direct mode shows no events either.
            events: if replayed { Vec::new() } else { result.events },
            version: result.version,
            deduplicated: replayed,
        })
    }

    /// Uploads a file as evidence of an instance, as the token's person. No deadline on the
    /// whole upload (a large file on a slow link), only on silence.
    pub async fn attach(
        &self,
        instance: &str,
        name: &str,
        media_type: &str,
        content: Vec<u8>,
    ) -> anyhow::Result<Applied> {
        let path = format!("/api/v1/instances/{}/evidence", segment(instance)?);
        let request = self
            .request(Method::POST, &path)?
            .query(&[("name", name)])
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(content);
        self.applied(request, &path).await
    }

    /// Starts an instance as the token's person.
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        key: Option<&str>,
    ) -> anyhow::Result<Applied> {
        let body = serde_json::json!({ "workflow": workflow, "input": input });
        self.post("/api/v1/instances", &body, key).await
    }

    /// Runs a command on an instance as the token's person.
    pub async fn execute(
        &self,
        instance: &str,
        command: &Command,
        key: Option<&str>,
    ) -> anyhow::Result<Applied> {
        let Value::Object(mut body) = serde_json::to_value(command)? else {
            bail!("a command is a JSON object");
        };
        let Some(Value::String(name)) = body.remove("command") else {
            bail!("a command names itself");
        };
        let path = format!(
            "/api/v1/instances/{}/{}",
            segment(instance)?,
            name.replace('_', "-")
        );
        self.post(&path, &Value::Object(body), key).await
    }

    /// An instance's state now (`at: None`) or at a moment, with its `view_hash`.
    pub async fn state(&self, instance: &str, at: Option<&str>) -> anyhow::Result<Value> {
        let id = segment(instance)?;
        match at {
            None => self.get(&format!("/api/v1/instances/{id}"), &[]).await,
            Some(at) => {
                self.get(&format!("/api/v1/instances/{id}/state"), &[("at", at)])
                    .await
            }
        }
    }

    /// Follows the live event stream until the instance is no longer running, across
    /// reconnects (a server restarting, a proxy cutting idle connections): resumes after the
    /// last event seen, so nothing is missed. `Status::Running` when `timeout` passed first.
    pub async fn wait_for_end(
        &self,
        instance: &str,
        timeout: Option<Duration>,
    ) -> anyhow::Result<Status> {
        match timeout {
            // Past it: still running as far as anyone could tell.
            Some(t) => tokio::time::timeout(t, self.follow(instance))
                .await
                .unwrap_or(Ok(Status::Running)),
            None => self.follow(instance).await,
        }
    }

    async fn follow(&self, instance: &str) -> anyhow::Result<Status> {
        use eventsource_stream::Eventsource as _;
        let id = segment(instance)?;
        let mut last_seen: Option<String> = None;
        let mut pause = Duration::from_millis(200);
        // A server that never answered is a wrong address, said at once; one that answered
        // and went away is waited for (a restart), and said once per outage.
        let mut answered = false;
        let mut told = false;
        loop {
            // Subscribed first, then looked at: an end committed in between is in the stream.
            let mut request = self
                .request(Method::GET, "/api/v1/events")?
                .query(&[("instance", id)]);
            if let Some(last) = &last_seen {
                request = request.header("Last-Event-ID", last);
            }
            let looked = async {
                let response = self.send(request).await?;
                let view = self.state(instance, None).await?;
                anyhow::Ok((response, view))
            }
            .await;
            match looked {
                Ok((response, view)) => {
                    answered = true;
                    told = false;
                    if let Some(status) = ended(&view)? {
                        return Ok(status);
                    }
                    pause = Duration::from_millis(200);
                    let mut stream = response.bytes_stream().eventsource();
                    while let Some(Ok(event)) = stream.next().await {
                        if !event.id.is_empty() {
                            last_seen = Some(event.id.clone());
                        }
                        if END_TYPES.contains(&event.event.as_str()) {
                            // The event says how it ended: the server's view of the instance
                            // may not have folded it yet (another process committed it).
                            if let Some(status) = end_of(&event.data) {
                                return Ok(status);
                            }
                            break;
                        }
                    }
                }
                Err(e) if answered && is_unreachable(&e) => {
                    if !told {
                        crate::say(format_args!(
                            "signoff wait: the server at {} is not answering ({e:#}); waiting for it",
                            self.base
                        ));
                        told = true;
                    }
                }
                Err(e) => return Err(e),
            }
            // The stream ended (an end, a restart, a cut): look again after a pause that grows
            // while the server is away.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
}

/// What `signoff login` keeps: the server and the token to act with there, in a file only its
/// owner may read (`$XDG_CONFIG_HOME/signoff/login.json`, else `~/.config/signoff/login.json`).
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct Login {
    server: String,
    token: String,
}

impl Login {
    /// Where it is kept (none without `XDG_CONFIG_HOME` or `HOME`, as under some services).
    fn path() -> Option<PathBuf> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(config.join("signoff").join("login.json"))
    }

    fn path_to_write() -> anyhow::Result<PathBuf> {
        Self::path().context("neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep a login")
    }

    /// The saved login, if any; refused when others may read it (the token would be theirs).
    fn read() -> anyhow::Result<Option<Self>> {
        use std::io::Read as _;
        use std::os::unix::fs::MetadataExt as _;
        let Some(path) = Self::path() else {
            return Ok(None);
        };
        // Opened without following a link, and judged by what was opened: the file read is
        // the file checked.
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_NOFOLLOW)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => bail!(
                "{}: {e} (a login file must be a plain file of yours; `signoff logout` removes it)",
                path.display()
            ),
        };
        let meta = file.metadata()?;
        // /proc/self belongs to the process's effective user.
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        if !meta.is_file() || me.is_some_and(|me| me != meta.uid()) {
            bail!(
                "{} is not a plain file of yours: not used (`signoff logout` removes it)",
                path.display()
            );
        }
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} holds a token and others may read it (mode {:o}): chmod 600 it, or \
                 `signoff logout` and log in again",
                path.display(),
                mode & 0o777
            );
        }
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not a login this CLI wrote", path.display()))
    }

    /// Writes it readable by its owner alone, in place of any other.
    fn write(&self) -> anyhow::Result<PathBuf> {
        let path = Self::path_to_write()?;
        let dir = path.parent().context("a login file has a folder")?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("{}", dir.display()))?;
        let temporary = dir.join(".login.json.tmp");
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("{}", temporary.display()))?;
        file.write_all(serde_json::to_string(self)?.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path).with_context(|| format!("{}", path.display()))?;
        Ok(path)
    }
}

/// `signoff login URL`: checks a token against the server and keeps both for the commands
/// that follow (they then act through the server unless a database is named).
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The server's address, e.g. https://signoff.example.com.
    url: String,
}

pub async fn login(g: &Global, args: LoginArgs) -> anyhow::Result<ExitCode> {
    if g.person.is_some() {
        bail!("--as is not taken by login: the token says who you are");
    }
    let token = match g.token.clone().filter(|t| !t.trim().is_empty()) {
        Some(token) => token,
        None => {
            use std::io::IsTerminal as _;
            if std::io::stdin().is_terminal() {
                crate::say(format_args!(
                    "paste your signoff token (signoff_…) and press Enter:"
                ));
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    if token.is_empty() {
        bail!("no token given: --token, SIGNOFF_TOKEN, or paste it on standard input");
    }
    let client = Client::new(&args.url, &token)?;
    let me: Value = client.get("/api/v1/me", &[]).await?;
    let who = me["id"].as_str().unwrap_or("?").to_owned();
    let path = Login {
        server: args.url.clone(),
        token,
    }
    .write()?;
    outln!(
        "logged in to {} as {who}; the token is kept in {} (readable by you alone)",
        args.url,
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `signoff logout`: forgets the saved login.
pub fn logout() -> anyhow::Result<ExitCode> {
    let path = Login::path_to_write()?;
    match std::fs::remove_file(&path) {
        Ok(()) => outln!("logged out: removed {}", path.display())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => outln!("not logged in")?,
        Err(e) => bail!("{}: {e}", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}

/// A command's answer.
#[derive(Deserialize)]
struct CommandResult {
    instance: String,
    version: u64,
    events: Vec<InstanceEvent>,
}

/// The status, once it is no longer running.
fn finished(status: Status) -> Option<Status> {
    match status {
        Status::New | Status::Running => None,
        done => Some(done),
    }
}

/// The status of an instance's view, when it is no longer running.
fn ended(view: &Value) -> anyhow::Result<Option<Status>> {
    let status: Status = serde_json::from_value(view["state"].clone())
        .context("the server's instance has no status this CLI reads")?;
    Ok(finished(status))
}

/// How an instance ended, from the CloudEvent of its end (`data` of the live stream), as the
/// engine's own fold reads that event.
fn end_of(cloudevent: &str) -> Option<Status> {
    let event: Value = serde_json::from_str(cloudevent).ok()?;
    let ty = event["type"].as_str()?;
    let event = InstanceEvent::from_parts(ty, &event["data"].to_string()).ok()?;
    let mut state = Instance::default();
    state.evolve(&event);
    finished(state.status)
}

/// Whether an error is the server being away (not answering, a gateway without it); not an
/// answer this CLI cannot read (that would not get better by waiting).
fn is_unreachable(error: &anyhow::Error) -> bool {
    if let Some(problem) = error.downcast_ref::<Problem>() {
        return matches!(problem.status, 502..=504);
    }
    error.chain().any(|e| {
        e.downcast_ref::<reqwest::Error>()
            .is_some_and(|e| !e.is_decode() && !e.is_status() && !e.is_builder())
    })
}

/// An instance id as a path segment: only what an id may hold.
pub fn segment(id: &str) -> anyhow::Result<&str> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!("{id:?} is not an instance id");
    }
    Ok(id)
}

/// The problem of an answer that is not a success; a body that is not one is described.
async fn problem_of(response: Response) -> Problem {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Problem>(&text) {
        Ok(mut problem) if !problem.detail.is_empty() => {
            problem.status = status.as_u16();
            if status == StatusCode::UNAUTHORIZED {
                problem.detail = format!("the server refused the token: {}", problem.detail);
            }
            problem
        }
        _ => Problem {
            kind: String::new(),
            status: status.as_u16(),
            detail: format!(
                "the server answered {status}{}",
                if text.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", text.trim().chars().take(300).collect::<String>())
                }
            ),
            rule: None,
            errors: Vec::new(),
        },
    }
}
