//! One outbox message as an email: plain text and HTML from templates, and the headers that
//! thread it.

use std::sync::LazyLock;

use lettre::message::{Mailbox, MultiPart};
use minijinja::{Environment, context};
use signoff_runtime::outbox::Message;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("message.txt", include_str!("../templates/message.txt")),
        ("message.html", include_str!("../templates/message.html")),
        // The one rendering of an instance the pages use too.
        (
            "view.html",
            include_str!("../../signoff-server/templates/view.html"),
        ),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // The templates are part of the binary; a broken one is caught by the tests.
            tracing::error!(template = name, error = %e, "an email template does not parse");
        }
    }
    env
});

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

/// The plain text and the HTML of `message`, its links under `public_url`.
fn bodies(message: &Message, public_url: &str) -> Result<(String, String), String> {
    let link = format!("{public_url}/instances/{}", message.instance);
    let view = message.view.as_ref();
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
    };
    let render = |name: &str| {
        TEMPLATES
            .get_template(name)
            .and_then(|t| t.render(&values))
            .map_err(|e| format!("the email template {name} failed: {e}"))
    };
    Ok((render("message.txt")?, render("message.html")?))
}

/// The email for `message`, from `from`, its links under `public_url`.
///
/// # Errors
/// The recipient's address is not one, or a template failed.
pub fn compose(
    message: &Message,
    from: &Mailbox,
    public_url: &str,
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
    let (plain, html) = bodies(message, public_url)?;
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
            noted_at: signoff_core::Timestamp(0),
            view: None,
        }
    }

    fn formatted(message: &Message) -> String {
        let from: Mailbox = "signoff <signoff@example.com>".parse().unwrap();
        let email = compose(message, &from, "https://signoff.example.com").unwrap();
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
        let (plain, html) = bodies(&message(), "https://signoff.example.com").unwrap();
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
        let err = compose(&bad, &from, "https://signoff.example.com").unwrap_err();
        assert!(err.contains("not an email address"), "{err}");
    }
}
