//! The web pages in real headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! over WebDriver: sign in, fill the DPIA's form (a refusal shown next to its field, what was
//! typed kept), approve with a justification, watch a timeline update live, and, as the
//! auditor, see an instance as it was at an earlier moment. A screenshot of each page is written
//! to `screenshots/` under cargo's test temp folder; the path is printed.
//!
//! Without Chromium the case prints that it was skipped, and fails when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::Server;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// axe-core (npm), which checks a page for accessibility problems; `.ci/run` installs it here
/// (`npm install --prefix ~/.cache/signoff-axe axe-core@4`), `SIGNOFF_TEST_AXE` names another.
const AXE: &str = ".cache/signoff-axe/node_modules/axe-core/axe.min.js";

struct Driver {
    process: Child,
    client: Client,
    shots: PathBuf,
    /// axe-core's source, injected into each page it checks.
    axe: Option<String>,
}

/// axe-core's source, or why it is missing (a failure under CI, else the checks are skipped).
fn axe_source() -> Option<String> {
    let path = std::env::var_os("SIGNOFF_TEST_AXE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(AXE),
        PathBuf::from,
    );
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have axe-core at {} ({e}): npm install --prefix ~/.cache/signoff-axe axe-core@4",
                path.display()
            );
            eprintln!(
                "SKIPPED: axe-core is not at {}; pages not checked",
                path.display()
            );
            None
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    async fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
            );
            eprintln!("SKIPPED: Chromium or ChromeDriver is not installed; browser case not run");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1100"],
            },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut client = None;
        for _ in 0..50 {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Self {
            process,
            client: client.expect("connect to chromedriver"),
            shots,
            axe: axe_source(),
        })
    }

    /// Checks the page as it is with axe-core: no serious or critical violation (WCAG 2.x A
    /// and AA rules and axe's best practices), each one found named with where it is.
    async fn accessible(&self, page: &str) {
        let Some(axe) = &self.axe else { return };
        self.client
            .execute(&format!("{axe}\nwindow.axe = axe;"), vec![])
            .await
            .unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3)
                        .map(n => n.target.join(' ')).join(', ')}`)))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        let found: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(found.is_empty(), "{page}:\n{}", found.join("\n"));
    }

    /// Presses and releases one key.
    async fn press(&self, key: char) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await.unwrap();
    }

    /// Moves the focus with Tab, as a keyboard user does, until it is on `selector`.
    async fn tab_to(&self, selector: &str) {
        for _ in 0..80 {
            let here = self
                .client
                .execute(
                    "return document.activeElement && document.activeElement.matches(arguments[0]);",
                    vec![json!(selector)],
                )
                .await
                .unwrap();
            if here == json!(true) {
                return;
            }
            self.press(fantoccini::key::Key::Tab.into()).await;
        }
        panic!("Tab never reached {selector}");
    }

    /// Types into what has the focus.
    async fn type_text(&self, text: &str) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Checks the page with axe-core ([`Driver::accessible`]), then takes its screenshot.
    async fn shot(&self, name: &str) {
        self.accessible(name).await;
        let png = self.client.screenshot().await.unwrap();
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
    }

    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector} is on the page: {e}"))
    }

    /// The text of `selector`, looked up again if the element goes stale under us (the page it
    /// was found on navigated away, or a live update replaced it).
    async fn text(&self, selector: &str) -> String {
        for _ in 0..50 {
            if let Ok(text) = self.css(selector).await.text().await {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{selector} kept going stale");
    }

    async fn value(&self, selector: &str) -> String {
        self.css(selector)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    async fn sign_in(&self, s: &Server, who: &str) {
        self.client.goto(&s.url("/signin")).await.unwrap();
        self.css("#token")
            .await
            .send_keys(&s.tokens[who])
            .await
            .unwrap();
        self.css("form[action='/signin'] button")
            .await
            .click()
            .await
            .unwrap();
        self.css("form.who").await;
        assert!(self.text("form.who span").await.starts_with(who));
    }

    async fn sign_out(&self) {
        self.css("form.who button").await.click().await.unwrap();
        self.css("#token").await;
    }

    /// Waits until `selector`'s text contains `want`, without reloading the page. The element may
    /// be replaced while we look (a form's answer loading, a live update), so a stale or missing
    /// element is looked up again rather than taken as a failure.
    async fn until_text(&self, selector: &str, want: &str) {
        let mut last = String::new();
        for _ in 0..100 {
            if let Ok(element) = self.client.find(Locator::Css(selector)).await
                && let Ok(text) = element.text().await
            {
                if text.contains(want) {
                    return;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{selector} never showed {want:?}: {last}");
    }
}

pub async fn a_person_signs_in_fills_decides_and_an_auditor_looks_back(s: &Server) {
    let Some(d) = Driver::start().await else {
        return;
    };
    d.client.goto(&s.url("/inbox")).await.unwrap();
    d.css("#token").await;
    d.shot("01-sign-in").await;

    // Carol opens a DPIA. The form comes from the definition; a refused value is shown next to
    // its field, and what she typed stays.
    d.sign_in(s, "carol").await;
    d.client.goto(&s.url("/start/dpia")).await.unwrap();
    d.css("#f-author").await.send_keys("carol").await.unwrap();
    d.css("#f-reason")
        .await
        .select_by_value("new_processing")
        .await
        .unwrap();
    d.css("#f-previous")
        .await
        .send_keys("not a link")
        .await
        .unwrap();
    d.css("form[action='/start/dpia'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let error = d.text("#f-processing-error").await;
    assert!(error.contains("processing"), "{error}");
    assert_eq!(d.value("#f-author").await, "carol");
    assert_eq!(d.value("#f-previous").await, "not a link");
    d.shot("02-dpia-form-refused").await;
    d.css("#f-processing")
        .await
        .send_keys("Customer support chat transcripts")
        .await
        .unwrap();
    d.css("#f-previous").await.clear().await.unwrap();
    d.css("form[action='/start/dpia'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    d.css("#step-draft").await;
    assert!(d.text("h1").await.contains("DPIA"));
    assert!(d.text("#timeline").await.contains("submitted"));
    d.shot("03-dpia-draft").await;

    // Carol watches her deployment request; Bob approves it elsewhere; her page follows.
    let watched = s.low_risk_deployment("carol").await;
    d.client
        .goto(&s.url(&format!("/instances/{watched}")))
        .await
        .unwrap();
    d.until_text("#status", "running").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = s
        .post(
            "bob",
            &format!("/api/v1/instances/{watched}/decide"),
            &json!({"step": "team_review", "verdict": "approve",
                    "justification": "pool size is fine for this load"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    d.until_text("#timeline", "bob").await;
    d.until_text("#status", "ended: approved").await;
    d.shot("04-timeline-live").await;
    d.client.goto(&s.url("/inbox")).await.unwrap();
    d.shot("05-inbox").await;
    d.sign_out().await;

    // Bob approves another request on its page, with a justification.
    let decided = s.low_risk_deployment("carol").await;
    d.sign_in(s, "bob").await;
    d.client.goto(&s.url("/inbox")).await.unwrap();
    d.css(&format!("a[href^='/instances/{decided}']"))
        .await
        .click()
        .await
        .unwrap();
    // What a rejection must say is shown before anyone gets it wrong.
    let asks = d.text("#asks-team_review").await;
    assert!(
        asks.contains("To reject: Why is this change rejected?") && asks.contains("at least 10"),
        "{asks}"
    );
    d.css("#justification-team_review")
        .await
        .send_keys("Raising the pool is within the tested range")
        .await
        .unwrap();
    d.shot("06-approval-gate").await;
    d.css("#step-team_review button[value=approve]")
        .await
        .click()
        .await
        .unwrap();
    d.until_text("#status", "ended: approved").await;
    d.until_text("#timeline", "Raising the pool").await;
    d.shot("07-approved").await;
    d.sign_out().await;

    // The same decision with the keyboard alone: sign in, reach the justification with Tab,
    // type it, Tab to Approve, press Enter.
    let by_keyboard = s.low_risk_deployment("carol").await;
    d.client.goto(&s.url("/signin")).await.unwrap();
    d.tab_to("#token").await;
    d.type_text(&s.tokens["bob"]).await;
    d.press(fantoccini::key::Key::Enter.into()).await;
    d.css("form.who").await;
    d.client
        .goto(&s.url(&format!("/instances/{by_keyboard}")))
        .await
        .unwrap();
    d.tab_to("#justification-team_review").await;
    d.type_text("Checked by keyboard: the pool size is in the tested range")
        .await;
    d.tab_to("#step-team_review button[value=approve]").await;
    d.press(fantoccini::key::Key::Enter.into()).await;
    d.until_text("#status", "ended: approved").await;
    d.until_text("#timeline", "Checked by keyboard").await;
    d.client.goto(&s.url("/start")).await.unwrap();
    d.accessible("start").await;
    d.client.goto(&s.url("/instances")).await.unwrap();
    d.accessible("instances").await;

    // A high-risk change needs two of the board: with Bob's approval in, his page says what
    // the gate asks to check and "1 of 2", and offers him no buttons any more.
    let board = s.deployment_of_risk("carol", "high").await;
    let (status, body) = s
        .post(
            "bob",
            &format!("/api/v1/instances/{board}/decide"),
            &json!({"step": "cab_approval", "verdict": "approve",
                    "justification": "rollback tested in staging"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    d.client
        .goto(&s.url(&format!("/instances/{board}")))
        .await
        .unwrap();
    let progress = d.text("#step-cab_approval .progress").await;
    assert!(
        progress.contains("1 of 2 from change advisory board"),
        "{progress}"
    );
    let check = d.text("#step-cab_approval .instructions").await;
    assert!(
        check.contains("Two members of the change advisory board"),
        "{check}"
    );
    let waiting = d.text("#step-cab_approval .meta").await;
    assert!(!waiting.contains("bob"), "{waiting}");
    let buttons = d
        .client
        .find_all(fantoccini::Locator::Css(
            "#step-cab_approval button[name=verdict]",
        ))
        .await
        .unwrap();
    assert!(buttons.is_empty(), "no decision buttons for who decided");
    // The board's gate is revocable: he may take his approval back while it is open.
    d.css("#step-cab_approval form[action$='/revoke/cab_approval'] button")
        .await;
    d.shot("07b-one-of-two-board-approvals").await;
    d.sign_out().await;

    // Nina, a controller, at the DPIA's validation gate reads the assessment as its form asked
    // it: sections, questions, choices and people by name, risks as a table; never JSON.
    let dpia = s.dpia_at_validation().await;
    d.sign_in(s, "nina").await;
    d.client
        .goto(&s.url(&format!("/instances/{dpia}")))
        .await
        .unwrap();
    let check = d.text("#step-validation .instructions").await;
    assert!(check.contains("Review the risk map"), "{check}");
    let answers = d.text("#answers-draft").await;
    for shown in [
        "Describe the processing, the principles and the risks",
        "answered by Carol",
        "Context",
        "Fundamental principles",
        "Risks",
        "Legal basis (art. 6)\nLegitimate interests",
        "Are data transferred outside the European Union?\nNo",
        "Online identifiers",
        "Kind of risk",
        "Illegitimate access",
    ] {
        assert!(answers.contains(shown), "{shown:?} not in:\n{answers}");
    }
    let all = d.text("#answers").await;
    for raw in [
        "{\"",
        "\":",
        "transfers_outside_eu",
        "legitimate_interests",
        "false",
    ] {
        assert!(!all.contains(raw), "{raw:?} shown:\n{all}");
    }
    assert!(
        d.text("#answers-open")
            .await
            .contains("Author (project owner)\nCarol")
    );
    d.css("#justification-validation").await;
    d.shot("07c-dpia-at-the-controllers-gate").await;
    d.client
        .execute(
            "document.querySelector('#answers-draft').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    d.shot("07d-dpia-answers-as-the-controller-reads-them")
        .await;
    d.sign_out().await;

    // Ruth audits: the chain is intact, and the instance as it was after its first event was
    // running, with what changed since listed.
    d.sign_in(s, "ruth").await;
    d.client
        .goto(&s.url(&format!("/instances/{decided}")))
        .await
        .unwrap();
    d.css("#timeline li:first-child a.time")
        .await
        .click()
        .await
        .unwrap();
    assert!(d.text("#chain").await.starts_with("Intact"));
    let then = d.text("#then-status").await;
    assert!(then.contains("running"), "{then}");
    assert!(d.text("#since").await.contains("approved"));
    d.shot("08-audit-earlier-moment").await;
    d.client.goto(&s.url("/charts")).await.unwrap();
    d.css("svg.chart").await;
    d.shot("09-charts").await;
    d.sign_out().await;

    // Bob follows the Approve link of his email: a confirmation page that decides nothing until
    // he types why and confirms (no sign-in: the link is his).
    let asked = s.low_risk_deployment("carol").await;
    let entry = s.runtime.load(&asked).await.unwrap();
    let gate = entry.state.active.keys().next().unwrap().clone();
    let shown = s.runtime.view_of(&entry).hash();
    let offered = s
        .runtime
        .offered_decisions(&entry, "bob", Some(&gate), &shown);
    let approve = offered
        .iter()
        .find(|c| c.verdict == signoff_core::engine::Verdict::Approve)
        .unwrap_or_else(|| panic!("bob may approve {gate}: {offered:?}"));
    d.client
        .goto(&s.url(&format!("/links/{}", approve.sign(&s.link_key))))
        .await
        .unwrap();
    d.css("#justification")
        .await
        .send_keys("Rollback plan checked")
        .await
        .unwrap();
    d.shot("10-decision-link-confirmation").await;
    d.css("form[action^='/links/'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    d.until_text("#link-decided", "You approved").await;
    d.shot("11-decided-through-a-link").await;
    d.client.clone().close().await.unwrap();
}
