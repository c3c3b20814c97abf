//! `signoff`, the command-line tool: runs and inspects the engine. It translates arguments into
//! calls on the store and the runtime and prints the answers; it holds no business rules.
#![forbid(unsafe_code)]

/// `println!` that answers its error instead of panicking. Rust ignores SIGPIPE, so when the
/// reader of stdout has gone (`signoff start … | head -1`), `println!` panics with "failed
/// printing to stdout"; this returns the `BrokenPipe` error, which `main` turns into a quiet exit.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod act;
mod bench;
mod client;
mod config;
mod definitions;
mod discord;
mod keys;
mod projections;
mod serve;
mod show;
mod verify;
mod wait;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: the engine allocates many small values per command
/// (events, JSON, CEL variables), and glibc's malloc and free took a quarter of the CPU of
/// `signoff bench workflows`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use signoff_runtime::{Config, Runtime, RuntimeError};
use signoff_store::DatabaseUrl;

/// Exit code when a command ran and its answer is "no" (the chain is broken, the definitions
/// have problems, the instance ended without success).
pub const EXIT_NO: u8 = 1;
/// Exit code when a command could not run (bad arguments, unreachable database…) or was refused.
pub const EXIT_ERROR: u8 = 2;
/// Exit code when the reader of standard output went away (`… | head -1`): 128 + SIGPIPE, what a
/// program stopped by the signal reports, so `set -o pipefail` treats signoff like `cat`.
pub const EXIT_CLOSED_PIPE: u8 = 141;

/// Whether an error is the reader of standard output having gone away. Only the top error
/// counts: a broken pipe further down the chain (a database connection) is a real failure.
fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Writes a line to standard error, ignoring a closed standard error (nobody is left to tell).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// signoff: event-sourced workflows with approval bots, on a tamper-evident log.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,

    #[command(subcommand)]
    command: Command,
}

/// Options every command understands.
#[derive(clap::Args, Clone)]
pub struct Global {
    /// The event log: sqlite://PATH (embedded, created on first use) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_DATABASE_URL",
        default_value = "sqlite://signoff.db"
    )]
    database: String,
    /// The folder of workflow definitions.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_WORKFLOWS",
        default_value = "workflows"
    )]
    workflows: PathBuf,
    /// The directory file: people, their roles and identities.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_PEOPLE",
        default_value = "people.yaml"
    )]
    people: PathBuf,
    /// Where evidence content is stored, by hash.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_EVIDENCE",
        default_value = "evidence"
    )]
    evidence: PathBuf,
    /// Who you are (a person id of the directory), for commands that act.
    #[arg(
        long = "as",
        global = true,
        env = "SIGNOFF_USER",
        value_name = "PERSON"
    )]
    person: Option<String>,
    /// A signoff server to act through (its HTTP API, as the token's person) instead of
    /// opening the database: the commands that act on instances and read them, `verify` and
    /// `wait`. Without it (and without `signoff login`), commands open the database directly
    /// (operators: `--as` is then taken on trust and recorded as `cli-direct:<user>`).
    #[arg(long, global = true, env = "SIGNOFF_SERVER", value_name = "URL")]
    server: Option<String>,
    /// The API token to act with on --server (`signoff token issue PERSON` makes one); it
    /// wins over a saved login's.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Whether a database was named (flag, environment or settings file): then a saved
    /// `signoff login` is not used, and commands act on the database directly.
    #[arg(skip)]
    database_chosen: bool,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    /// A YAML file of settings (database, workflows, people, evidence, listen, and the email
    /// settings below); flags and environment variables win over it.
    #[arg(long, global = true, env = "SIGNOFF_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The SMTP server notifications are emailed through: smtps://HOST (TLS, port 465),
    /// smtp://HOST:587?tls=required (STARTTLS), or smtp://127.0.0.1:PORT to a relay on this
    /// machine (plain SMTP is refused to any other host). Without it no email is sent; with
    /// it `serve` and `run` send email, and `worker email` sends it alone.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_SMTP_URL",
        value_name = "URL",
        help_heading = "Email"
    )]
    smtp_url: Option<String>,
    /// The user signoff signs in to the SMTP server as (with --smtp-password).
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_SMTP_USER",
        value_name = "USER",
        help_heading = "Email"
    )]
    smtp_user: Option<String>,
    /// Its password (never printed).
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_SMTP_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true,
        help_heading = "Email"
    )]
    smtp_password: Option<String>,
    /// Who emails come from.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_EMAIL_FROM",
        value_name = "ADDRESS",
        default_value = "signoff <signoff@localhost>",
        help_heading = "Email"
    )]
    email_from: String,
    /// Where people open signoff's pages: the base of the links in emails.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_PUBLIC_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080",
        help_heading = "Email"
    )]
    public_url: String,
    /// The key decision links in emails are signed with (`signoff keys init` makes it; a
    /// process that sends email makes it where none is). Every process that sends email or
    /// serves must read the same file; keep it outside the log and its backups.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_LINK_KEY_FILE",
        value_name = "FILE",
        default_value = "signoff-link.key",
        help_heading = "Email"
    )]
    link_key_file: PathBuf,
    /// The Discord bot's token (Developer Portal → your application → Bot). With it `serve`
    /// and `run` run the bot (approval requests as direct messages with Approve/Reject
    /// buttons), and `worker discord` runs it alone.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_DISCORD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        help_heading = "Discord"
    )]
    discord_token: Option<String>,
    /// Where the bot's REST calls go: Discord, or a proxy that rate-limits for it (the
    /// gateway's address is what `GET /api/v10/gateway` there answers).
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_DISCORD_API_URL",
        value_name = "URL",
        default_value = signoff_discord::DISCORD,
        help_heading = "Discord"
    )]
    discord_api_url: String,
    /// Register the bot's slash commands in this guild (server) only, at once, instead of
    /// globally.
    #[arg(
        long,
        global = true,
        env = "SIGNOFF_DISCORD_GUILD",
        value_name = "GUILD_ID",
        help_heading = "Discord"
    )]
    discord_guild: Option<u64>,
}

impl Global {
    /// The event log's address.
    pub fn url(&self) -> anyhow::Result<DatabaseUrl> {
        Ok(DatabaseUrl::parse(&self.database)?)
    }

    /// Opens the runtime over the log, the definitions and the directory.
    pub async fn open(&self) -> anyhow::Result<Runtime> {
        let mut config = Config::embedded(self.url()?);
        config.workflows.clone_from(&self.workflows);
        config.people.clone_from(&self.people);
        config.evidence.clone_from(&self.evidence);
        let runtime = signoff_runtime::open(&config).await?;
        let skipped = runtime.skipped_definitions();
        for problem in &skipped {
            eprintln!("warning: {problem}");
        }
        if !skipped.is_empty() {
            eprintln!(
                "warning: the workflow files above are not loaded (the others are); `signoff \
                 validate` lists every problem"
            );
        }
        Ok(runtime)
    }

    /// A runtime over the log only, for commands that read events (timeline, export,
    /// notifications): nothing is folded, synced or started, so reading never writes.
    pub async fn open_for_reading(&self) -> anyhow::Result<Runtime> {
        let options = signoff_store::OpenOptions {
            create_if_missing: false,
            ..signoff_store::OpenOptions::new(signoff_runtime::event_types())
        };
        let log = signoff_store::open(&self.url()?, options).await?;
        Ok(Runtime::new(
            log,
            std::sync::Arc::new(signoff_store::SystemClock),
            signoff_runtime::Definitions::default(),
            self.evidence.clone(),
        ))
    }

    /// The email channel the settings describe, if an SMTP server is named.
    pub fn email(&self) -> anyhow::Result<Option<std::sync::Arc<signoff_email::EmailChannel>>> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        let settings = signoff_email::Settings {
            url: url.clone(),
            user: self.smtp_user.clone(),
            password: self.smtp_password.clone(),
            from: self.email_from.clone(),
            public_url: self.public_url.clone(),
            timeout: std::time::Duration::from_secs(30),
            link_key: self.link_key(true)?,
            // Overrides live beside the definitions they are for.
            templates: Some(self.workflows.join("email")),
        };
        Ok(Some(std::sync::Arc::new(signoff_email::EmailChannel::new(
            &settings,
        )?)))
    }

    /// The key of decision links: read from its file, or made there when `create` (a process
    /// that sends email), else none (a server then says links are not set up).
    pub fn link_key(&self, create: bool) -> anyhow::Result<Option<signoff_core::link::LinkKey>> {
        keys::read_or_create(&self.link_key_file, create)
    }

    /// The Discord bot's settings, when a token is given.
    pub fn discord(&self) -> anyhow::Result<Option<signoff_discord::Settings>> {
        let Some(token) = &self.discord_token else {
            return Ok(None);
        };
        let settings = signoff_discord::Settings {
            token: token.clone(),
            api_url: self.discord_api_url.clone(),
            guild: self.discord_guild,
            public_url: Some(self.public_url.clone()),
        };
        settings.check()?;
        Ok(Some(settings))
    }

    /// The reactors of a process that runs them all: the built-in ones, and the email
    /// channel's outbox when an SMTP server is named.
    pub fn reactors(
        &self,
    ) -> anyhow::Result<Vec<std::sync::Arc<dyn signoff_runtime::reactor::Reactor>>> {
        let mut reactors = signoff_runtime::reactor::built_in();
        if let Some(email) = self.email()? {
            reactors.push(std::sync::Arc::new(signoff_runtime::reactor::Outbox(email)));
        }
        Ok(reactors)
    }

    /// The person acting, from `--as` or `SIGNOFF_USER`.
    pub fn actor(&self) -> anyhow::Result<&str> {
        self.person.as_deref().ok_or_else(|| {
            anyhow::anyhow!(
                "say who you are: --as PERSON (or SIGNOFF_USER), a person id of {}",
                self.people.display()
            )
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow definitions; every problem with file:line:column and a hint (exit 0 none,
    /// 1 problems, 2 error).
    Validate(definitions::ValidateArgs),
    /// Print the JSON Schema of workflow definitions (committed as workflows/schema.json).
    Schema,
    /// List the workflows loaded from the workflows folder.
    Workflows,
    /// Start an instance of a workflow.
    Start(act::StartArgs),
    /// Submit a form step.
    Submit(act::SubmitArgs),
    /// Approve or reject at an approval gate.
    Decide(act::DecideArgs),
    /// Revoke your decision on a gate that is still open (if the workflow allows it).
    Revoke(act::RevokeArgs),
    /// Hand your decision on a gate to another holder of the role (if the workflow allows it).
    Delegate(act::DelegateArgs),
    /// Mark a task of a checklist done, or not being done with a reason.
    Complete(act::CompleteArgs),
    /// Post a status update (incidents).
    PostStatus(act::PostStatusArgs),
    /// Add a comment to an instance.
    Comment(act::CommentArgs),
    /// Send a signal an instance's wait step may be waiting for.
    Signal(act::SignalArgs),
    /// Attach a file as evidence (stored by its hash, the hash recorded in the log).
    Attach(act::AttachArgs),
    /// Cancel an instance (its requester; an operator too once a rule stopped one of its steps).
    Cancel(act::CancelArgs),
    /// Retry a step a rule stopped, under the workflow's current (fixed) definition (operators
    /// only).
    Retry(act::RetryArgs),
    /// The state of an instance, or the list of running instances.
    Status(show::StatusArgs),
    /// What waits for a person: forms, decisions, tasks.
    Inbox(show::InboxArgs),
    /// Who did what, when and through which channel, for one instance.
    Timeline(show::TimelineArgs),
    /// The state of an instance as it was at a moment in the past.
    Replay(show::ReplayArgs),
    /// The log as JSON Lines of CloudEvents (all of it, or one instance).
    Export(show::ExportArgs),
    /// Notifications recorded in the log (what each person was told).
    Notifications(show::NotificationsArgs),
    /// Check an API token against a server and keep both (readable by you alone): commands
    /// then act through that server unless a database is named.
    Login(client::LoginArgs),
    /// Forget the saved login.
    Logout,
    /// Block until an instance ends: exit 0 when it ended with a success (approved…), 1 when
    /// it ended otherwise (rejected, expired…), 3 when cancelled, 4 on --timeout, 2 on error.
    Wait(wait::Args),
    /// Serve the HTTP API, the live event stream and metrics, and run the engine's clock.
    Serve(serve::ServeArgs),
    /// Issue, revoke and list API tokens.
    #[command(subcommand)]
    Token(serve::Token),
    /// The key decision links in emails are signed with.
    #[command(subcommand)]
    Keys(keys::Keys),
    /// Run the engine's clock: fire due timers (reminders, deadlines, escalations, waits) and
    /// cron schedules, until stopped (or once, with --once).
    Run(worker::RunArgs),
    /// Run one reactor alone (timers, schedules, starts, keys, projections), without HTTP.
    Worker(worker::WorkerArgs),
    /// Walk the hash chain and report the first broken link (exit 0 intact, 1 broken, 2 error).
    Verify(verify::Args),
    /// Check the read models against the log, or build them again from it.
    #[command(subcommand)]
    Projections(projections::Projections),
    /// Measure signoff on this machine; prints one JSON line per scenario.
    #[command(subcommand)]
    Bench(bench::Bench),
}

impl Command {
    /// The name of an operator's command, which works on the database itself and refuses
    /// `--server`.
    fn on_the_database(&self) -> Option<&'static str> {
        Some(match self {
            Self::Run(_) => "run",
            Self::Worker(_) => "worker",
            Self::Serve(_) => "serve",
            Self::Token(_) => "token",
            Self::Keys(_) => "keys",
            Self::Projections(_) => "projections",
            _ => return None,
        })
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    if let Some(what) = cli.command.on_the_database()
        && g.server.is_some()
    {
        anyhow::bail!(
            "{what} works on the database itself and is not taken with --server; run it where \
             the database is (leave out --server and SIGNOFF_SERVER)"
        );
    }
    match cli.command {
        Command::Validate(args) => definitions::validate(g, &args),
        Command::Schema => definitions::schema(),
        Command::Workflows => definitions::list(g),
        Command::Start(args) => act::start(g, args).await,
        Command::Submit(args) => act::submit(g, args).await,
        Command::Decide(args) => act::decide(g, args).await,
        Command::Revoke(args) => act::revoke(g, args).await,
        Command::Delegate(args) => act::delegate(g, args).await,
        Command::Complete(args) => act::complete(g, args).await,
        Command::PostStatus(args) => act::post_status(g, args).await,
        Command::Comment(args) => act::comment(g, args).await,
        Command::Signal(args) => act::signal(g, args).await,
        Command::Attach(args) => act::attach(g, args).await,
        Command::Cancel(args) => act::cancel(g, args).await,
        Command::Retry(args) => act::retry(g, args).await,
        Command::Status(args) => show::status(g, args).await,
        Command::Inbox(args) => show::inbox(g, args).await,
        Command::Timeline(args) => show::timeline(g, args).await,
        Command::Replay(args) => show::replay(g, args).await,
        Command::Export(args) => show::export(g, args).await,
        Command::Notifications(args) => show::notifications(g, args).await,
        Command::Wait(args) => wait::wait(g, args).await,
        Command::Login(args) => client::login(g, args).await,
        Command::Logout => client::logout(),
        Command::Run(args) => worker::run(g, args).await,
        Command::Worker(args) => worker::worker(g, args).await,
        Command::Serve(args) => serve::serve(g, args).await,
        Command::Token(command) => serve::token(g, command).await,
        Command::Keys(command) => keys::run(g, &command),
        Command::Verify(args) => verify::run(g, args).await,
        Command::Projections(command) => projections::run(g, command).await,
        Command::Bench(b) => bench::run(g, b).await,
    }
}

/// The command line, with the settings of the configuration file it names.
fn parse() -> anyhow::Result<Cli> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.global.database_chosen = !config::defaulted(&matches, "database");
    if let Some(path) = cli.global.config.clone() {
        let file = config::File::read(&path)?;
        cli.global.database_chosen |= file.database.is_some();
        config::apply(file, &matches, &mut cli)?;
    }
    Ok(cli)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SIGNOFF_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(error) => {
            say(format_args!("error: {error:#}"));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let json = cli.global.json;
    let result = run(cli).await;
    bench::history::report_peak_rss();
    match result {
        Ok(code) => code,
        // Nobody reads any more: nothing to say, and no backtrace.
        Err(error) if is_closed_pipe(&error) => ExitCode::from(EXIT_CLOSED_PIPE),
        Err(error) => {
            // A refusal is a sentence for a person; other errors carry their causes.
            let (refused, message, field) = match error.downcast_ref::<RuntimeError>() {
                Some(RuntimeError::Rejected(rejection)) => {
                    (true, rejection.message.clone(), rejection.field.clone())
                }
                _ if error
                    .downcast_ref::<client::Problem>()
                    .is_some_and(client::Problem::is_refusal) =>
                {
                    (true, error.to_string(), None)
                }
                _ => (false, format!("{error:#}"), None),
            };
            if json {
                // A script that asked for JSON reads its failures as JSON too (on stderr, so
                // that stdout holds only answers).
                let kind = if refused { "refused" } else { "error" };
                say(format_args!(
                    "{}",
                    serde_json::json!({ "error": kind, "message": message, "field": field })
                ));
            } else if refused {
                say(format_args!("refused: {message}"));
            } else {
                say(format_args!("error: {message}"));
            }
            ExitCode::from(EXIT_ERROR)
        }
    }
}
