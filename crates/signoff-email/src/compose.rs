//! One outbox message as an email: plain text and HTML from templates, and the headers that
//! thread it.

use std::path::Path;

use lettre::message::{Mailbox, MultiPart};
use minijinja::{Environment, context};
use signoff_core::engine::Verdict;
use signoff_core::link::LinkKey;
use signoff_runtime::outbox::Message;

/// The shipped templates: a message in plain text and in HTML, and the rendering of an
/// instance the pages use too.
const SHIPPED: [(&str, &str); 3] = [
    ("message.txt", include_str!("../templates/message.txt")),
    ("message.html", include_str!("../templates/message.html")),
    (
        "view.html",
        include_str!("../../signoff-server/templates/view.html"),
    ),
];

/// The templates messages are made from: the shipped ones, and a deployment's overrides (a
/// folder of `WORKFLOW.txt`/`.html` and `WORKFLOW/STEP.txt`/`.html` files, each a whole
/// template or one that `{% extends "message.html" %}` and replaces its blocks `intro`,
/// `request` or `actions`).
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The shipped templates alone.
    ///
    /// # Panics
    /// Never: the shipped templates are checked by the tests.
    #[must_use]
    pub fn shipped() -> Self {
        let mut env = Environment::new();
        for (name, source) in SHIPPED {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "an email template does not parse");
            }
        }
        Self { env }
    }

    /// The shipped templates with the overrides of folder `dir` (absent: none).
    ///
    /// # Errors
    /// A file that cannot be read or does not parse, named with the template's error.
    pub fn with_overrides(dir: &Path) -> Result<Self, String> {
        let mut templates = Self::shipped();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(templates);
        };
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                for inner in std::fs::read_dir(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .flatten()
                {
                    files.push(inner.path());
                }
            } else {
                files.push(path);
            }
        }
        files.sort();
        for path in files {
            let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
                continue;
            };
            if ext != "txt" && ext != "html" {
                continue;
            }
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let source =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            templates
                .env
                .add_template_owned(name, source)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(templates)
    }

    /// The template for a message about `step` of `workflow`, in `ext` (`txt` or `html`): the
    /// step's own, the workflow's, or the shipped one.
    fn pick(&self, workflow: Option<&str>, step: Option<&str>, ext: &str) -> String {
        let candidates = [
            workflow.zip(step).map(|(w, s)| format!("{w}/{s}.{ext}")),
            workflow.map(|w| format!("{w}.{ext}")),
        ];
        candidates
            .into_iter()
            .flatten()
            .find(|name| self.env.get_template(name).is_ok())
            .unwrap_or_else(|| format!("message.{ext}"))
    }
}

/// Why a person is told, for the footer ("You get this email because …").
fn why(reason: &str) -> &'static str {
    match reason {
        "approval_requested" => "your decision is requested",
        "form_requested" => "a form is yours to fill in",
        "reminder" => "something of yours is still open",
        "escalation" => "it was escalated to you",
        "outcome" => "you asked for it, and it ended",
        "gate_unsatisfiable" => "a gate of yours cannot close as it stands",
        _ => "the workflow names you",
    }
}

/// A part of a `Message-ID`: what is not a letter, a digit, `.`, `-` or `_` becomes `-`.
fn id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The subject: the notification's, naming the instance by its title when it does not.
fn subject(message: &Message) -> String {
    match &message.view {
        Some(view) if !message.subject.contains(&view.title) => {
            format!("{}: {}", view.title, message.subject)
        }
        _ => message.subject.clone(),
    }
}

/// A time as people read it in a message: `2026-11-23 10:15 UTC`.
fn when(t: signoff_core::Timestamp) -> String {
    let text = t.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

/// The plain text and the HTML of `message`, its links under `public_url`, its decision links
/// signed with `key` (none without one).
fn bodies(
    templates: &Templates,
    message: &Message,
    public_url: &str,
    key: Option<&LinkKey>,
) -> Result<(String, String), String> {
    let link = format!("{public_url}/instances/{}", message.instance);
    let view = message.view.as_ref();
    let decisions: Vec<_> = key
        .map(|key| {
            message
                .decisions
                .iter()
                .map(|claims| {
                    context! {
                        verdict => claims.verdict.as_str(),
                        label => match claims.verdict {
                            Verdict::Approve => "Approve…",
                            Verdict::Reject => "Reject…",
                        },
                        url => format!("{public_url}/links/{}", claims.sign(key)),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let expires = message
        .decisions
        .iter()
        .map(|c| c.expires)
        .min()
        .filter(|_| !decisions.is_empty())
        .map(when);
    let about = message.about.as_ref();
    // A deadline is said where the message asks for a decision.
    let deadline = about
        .and_then(|a| a.deadline)
        .filter(|_| {
            matches!(
                message.reason.as_str(),
                "approval_requested" | "reminder" | "escalation"
            )
        })
        .map(when);
    let values = context! {
        name => &message.name,
        subject => subject(message),
        body => message.body.trim(),
        link => link,
        why => why(&message.reason),
        instance => &message.instance,
        view => minijinja::Value::from(minijinja::value::Serde(view)),
        view_text => view.map(|v| v.text("  ")),
        view_hash => view.map(signoff_core::engine::View::hash),
        decisions => decisions,
        expires => expires,
        reason => &message.reason,
        about => minijinja::Value::from(minijinja::value::Serde(about)),
        deadline => deadline,
    };
    let workflow = about.map(|a| a.workflow.as_str());
    let step = message.step.as_deref();
    let render = |ext: &str| {
        let name = templates.pick(workflow, step, ext);
        templates
            .env
            .get_template(&name)
            .and_then(|t| t.render(&values))
            .map_err(|e| format!("the email template {name} failed: {e}"))
    };
    Ok((render("txt")?, render("html")?))
}

/// The email for `message` from `templates`, from `from`, its links under `public_url`, its
/// decision links signed with `key`.
///
/// # Errors
/// The recipient's address is not one, or a template failed.
pub fn compose(
    templates: &Templates,
    message: &Message,
    from: &Mailbox,
    public_url: &str,
    key: Option<&LinkKey>,
) -> Result<lettre::Message, String> {
    let to = Mailbox::new(
        Some(message.name.clone()).filter(|n| !n.trim().is_empty()),
        message
            .address
            .parse()
            .map_err(|e| format!("{:?} is not an email address: {e}", message.address))?,
    );
    let domain = from.email.domain();
    // The same notification to the same person has the same id, whenever it is sent; every
    // message about one instance names the instance as its thread.
    let id = format!(
        "<{}.{}.{}@{domain}>",
        id_part(&message.notification),
        id_part(&message.person),
        id_part(&message.instance)
    );
    let thread = format!("<instance.{}@{domain}>", id_part(&message.instance));
    let (plain, html) = bodies(templates, message, public_url, key)?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject(message))
        .message_id(Some(id))
        .in_reply_to(thread.clone())
        .references(thread)
        .multipart(MultiPart::alternative_plain_html(plain, html))
        .map_err(|e| format!("the email cannot be made: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message {
            notification: "approval_requested-team_review-1".to_owned(),
            sequence: 7,
            instance: "01936b2e-0000-7000-8000-000000000000".to_owned(),
            person: "bob".to_owned(),
            name: "Bob Martin".to_owned(),
            address: "bob@example.com".to_owned(),
            subject: "Decision needed: payments-api v1.2.3 to production".to_owned(),
            body: "Carol asks you to <approve> the change.\nRollback: redeploy v1.2.2.".to_owned(),
            reason: "approval_requested".to_owned(),
            step: Some("team_review".to_owned()),
            activation: Some(1),
            noted_at: signoff_core::Timestamp(0),
            view: None,
            about: None,
            decisions: Vec::new(),
            recipients: Vec::new(),
        }
    }

    fn formatted(message: &Message) -> String {
        let from: Mailbox = "signoff <signoff@example.com>".parse().unwrap();
        let email = compose(
            &Templates::shipped(),
            message,
            &from,
            "https://signoff.example.com",
            None,
        )
        .unwrap();
        String::from_utf8(email.formatted()).unwrap()
    }

    #[test]
    fn a_message_is_threaded_by_instance_and_its_id_is_the_same_on_a_resend() {
        let text = formatted(&message());
        assert!(
            text.contains(
                "Message-ID: <approval_requested-team_review-1.bob.01936b2e-0000-7000-8000-000000000000@example.com>"
            ),
            "{text}"
        );
        for header in ["In-Reply-To", "References"] {
            assert!(
                text.contains(&format!(
                    "{header}: <instance.01936b2e-0000-7000-8000-000000000000@example.com>"
                )),
                "{header}: {text}"
            );
        }
        assert!(
            text.contains("To: \"Bob Martin\" <bob@example.com>"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
        // The Date differs between two sends; the id does not.
        let id = |t: &str| {
            t.lines()
                .find(|l| l.starts_with("Message-ID"))
                .map(str::to_owned)
        };
        assert_eq!(id(&text), id(&formatted(&message())));
    }

    #[test]
    fn the_html_part_escapes_what_the_workflow_wrote_and_both_link_to_the_instance() {
        let (plain, html) = bodies(
            &Templates::shipped(),
            &message(),
            "https://signoff.example.com",
            None,
        )
        .unwrap();
        assert!(
            html.contains("Carol asks you to &lt;approve&gt; the change."),
            "{html}"
        );
        assert!(
            plain.contains("Carol asks you to <approve> the change."),
            "{plain}"
        );
        let link = "https://signoff.example.com/instances/01936b2e-0000-7000-8000-000000000000";
        // The HTML escapes every `/` (as minijinja does); a browser reads it back.
        let escaped = link.replace('/', "&#x2f;");
        assert!(
            plain.contains(link) && html.contains(&escaped),
            "{plain}\n{html}"
        );
        assert!(
            plain.contains("because your decision is requested"),
            "{plain}"
        );
    }

    #[test]
    fn an_address_that_is_not_one_is_a_permanent_refusal() {
        let mut bad = message();
        bad.address = "bob at example".to_owned();
        let from: Mailbox = "signoff@example.com".parse().unwrap();
        let err = compose(
            &Templates::shipped(),
            &bad,
            &from,
            "https://signoff.example.com",
            None,
        )
        .unwrap_err();
        assert!(err.contains("not an email address"), "{err}");
    }

    fn asking() -> Message {
        let mut m = message();
        m.about = Some(signoff_runtime::outbox::About {
            workflow: "deployment-approval".to_owned(),
            workflow_title: "Deployment approval".to_owned(),
            requester: "Carol Dubois".to_owned(),
            step_title: Some("Team review".to_owned()),
            instructions: Some("Check the rollback plan.".to_owned()),
            deadline: Some(signoff_core::Timestamp(1_795_424_400_000_000)),
            asks: vec!["To reject: say why (at least 10 characters)".to_owned()],
            link_only: false,
            chat_channel: None,
        });
        m.decisions = [Verdict::Approve, Verdict::Reject]
            .into_iter()
            .map(|verdict| signoff_core::link::LinkClaims {
                id: signoff_core::link::LinkClaims::id_for(
                    &m.instance,
                    "team_review",
                    1,
                    "bob",
                    verdict,
                ),
                person: "bob".to_owned(),
                instance: m.instance.clone(),
                step: "team_review".to_owned(),
                activation: 1,
                verdict,
                shown: "sha256:abc".to_owned(),
                issued: signoff_core::Timestamp(0),
                expires: signoff_core::Timestamp(1_795_424_400_000_000),
            })
            .collect();
        m
    }

    #[test]
    fn a_request_says_who_asks_what_by_when_and_carries_signed_links_for_each_verdict() {
        let key = LinkKey::new([3; 32]);
        let (plain, html) = bodies(
            &Templates::shipped(),
            &asking(),
            "https://signoff.example.com",
            Some(&key),
        )
        .unwrap();
        for said in [
            "Carol Dubois asks for your decision: Team review (Deployment approval).",
            "Check the rollback plan.",
            "Decide by 2026-11-23 09:00 UTC.",
            "To reject: say why (at least 10 characters)",
            "expire at 2026-11-23 09:00 UTC",
        ] {
            assert!(plain.contains(said), "{said:?} not in:\n{plain}");
        }
        assert!(
            html.contains("<strong>Carol Dubois</strong> asks for your decision"),
            "{html}"
        );
        for (label, verdict) in [
            ("Approve… ", Verdict::Approve),
            ("Reject… ", Verdict::Reject),
        ] {
            let url = plain
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .unwrap_or_else(|| panic!("no {label} link in:\n{plain}"));
            let token = url
                .strip_prefix("https://signoff.example.com/links/")
                .unwrap();
            let claims = signoff_core::link::verify(token, &key).unwrap();
            assert_eq!((claims.verdict, claims.person.as_str()), (verdict, "bob"));
        }
        // Without a key: no decision links, and the page is where to decide.
        let (plain, _) =
            bodies(&Templates::shipped(), &asking(), "https://x.example", None).unwrap();
        assert!(
            !plain.contains("/links/") && plain.contains("Open it in signoff: https://x.example/"),
            "{plain}"
        );
    }

    #[test]
    fn a_workflow_or_a_step_overrides_the_shipped_templates() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("deployment-approval")).unwrap();
        std::fs::write(
            dir.path().join("deployment-approval/team_review.txt"),
            "{% extends \"message.txt\" %}{% block intro %}Team {{ about.step_title }}: over to you.{% endblock %}",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("deployment-approval.html"),
            "<p>Deployments: {{ subject }}</p>",
        )
        .unwrap();
        let templates = Templates::with_overrides(dir.path()).unwrap();
        let (plain, html) = bodies(&templates, &asking(), "https://x.example", None).unwrap();
        assert!(
            plain.starts_with("Team Team review: over to you."),
            "{plain}"
        );
        // The blocks it did not replace are the shipped ones.
        assert!(
            plain.contains("Open it in signoff: https://x.example/instances/"),
            "{plain}"
        );
        assert_eq!(
            html,
            "<p>Deployments: Decision needed: payments-api v1.2.3 to production</p>"
        );
        // Another step of the workflow gets the workflow's; another workflow the shipped ones.
        let mut other = asking();
        other.step = Some("window".to_owned());
        let (plain, _) = bodies(&templates, &other, "https://x.example", None).unwrap();
        assert!(plain.starts_with("Carol Dubois asks"), "{plain}");
        // A template that does not parse is named when the channel is made.
        std::fs::write(dir.path().join("broken.txt"), "{% if %}").unwrap();
        let err = Templates::with_overrides(dir.path()).err().unwrap();
        assert!(err.contains("broken.txt"), "{err}");
    }
}
