//! The workflow definition language: the types a YAML file in `workflows/` deserialises into.
//!
//! A step names its kind by the one kind key it carries (`form:`, `approval:`, `tasks:`,
//! `notify:`, `branch:`, `parallel:`, `join:`, `wait:`, `start_workflow:`, `end:`), so every
//! key of a definition is a plain struct field: unknown keys are refused with their position, and
//! every value keeps its line and column for the checks made after parsing. The doc comments
//! here are also the descriptions in `workflows/schema.json`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Span;
use super::located::Located;

/// A workflow definition: one YAML file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Identifier of the workflow: lowercase letters, digits and hyphens (`deployment-approval`).
    pub id: Located<String>,
    /// Title shown to people.
    pub title: String,
    /// What the workflow is for.
    #[serde(default)]
    pub description: String,
    /// How people tell one instance from another (inbox rows, lists, message subjects): a
    /// template over `data`, `input`, `requester` and `instance`, e.g.
    /// `"{{ data.request.service }} {{ data.request.version }} to {{ data.request.environment }}"`.
    /// Until the fields it reads are filled in, the workflow's title stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_title: Option<Located<String>>,
    /// The roles this workflow uses. A role is held by people in the directory, or, with `field`,
    /// by the person named in a form field of the instance (e.g. the incident commander).
    /// `requester` (the person who started the instance) is always defined.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSpec>,
    /// What starts the workflow besides a person: a schedule or another workflow's event.
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// The Discord channel (its id) this workflow's messages are posted in, once per
    /// notification with its recipients mentioned, instead of a direct message to each person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_channel: Option<Located<String>>,
    /// The steps. The first one is where an instance starts.
    pub steps: Vec<Step>,
}

/// A role used by a workflow.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// What the role does here.
    #[serde(default)]
    pub description: String,
    /// `step.field` of a person field: the role is held, in one instance, by the person that field
    /// names. Without it the role comes from the directory.
    #[serde(default)]
    pub field: Option<Located<String>>,
}

/// What starts an instance without a person asking.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// A standard 5-field crontab expression (`minute hour day month weekday`, Sunday = 0).
    #[serde(default)]
    pub cron: Option<Located<String>>,
    /// IANA time zone for `cron` (default UTC), e.g. `Europe/Berlin`.
    #[serde(default)]
    pub timezone: Option<Located<String>>,
    /// Start when an instance of another workflow reaches a step or ends with an outcome.
    #[serde(default)]
    pub on: Option<EventTrigger>,
    /// Who is recorded as the requester of a started instance. For `cron`, a person id
    /// (default `system`). For `on`, a CEL expression over the instance whose event it is,
    /// giving a person id (`data.declare.commander`); without it, that instance's requester.
    #[serde(default)]
    pub requester: Option<Located<String>>,
    /// For `on`: roles of this workflow handed on from the instance whose event it is, each a
    /// list of CEL expressions over that instance giving person ids
    /// (`author: [data.declare.commander, data.declare.scribe]`). In the started instance the
    /// role is held by exactly those people, not by the directory's holders.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Vec<Located<String>>>,
}

/// Another workflow's event that starts this one; the two instances are linked both ways.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// The other workflow's id.
    pub workflow: Located<String>,
    /// Start when it ends with this outcome.
    #[serde(default)]
    pub outcome: Option<Located<String>>,
    /// Start when it enters this step.
    #[serde(default)]
    pub step: Option<Located<String>>,
}

/// One step of a workflow. Exactly one kind key must be present.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = exactly_one_kind)]
pub struct Step {
    /// Identifier of the step, unique in the workflow: lowercase letters, digits, `-` and `_`.
    pub id: Located<String>,
    /// Title shown to people.
    #[serde(default)]
    pub title: String,
    /// Instructions shown with the step.
    #[serde(default)]
    pub description: String,
    /// A form to fill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Form>,
    /// An approval gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// A checklist of tasks with owners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Tasks>,
    /// A message to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// A choice on data: the first case whose `when` holds is taken, else `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Vec<Case>>,
    /// Branches that run at the same time, and where they meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<Parallel>,
    /// Where parallel branches meet: `all` waits for every branch, `any` for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinRule>,
    /// A pause: for a duration, until a time, or until a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    /// Start another workflow and link the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_workflow: Option<StartWorkflow>,
    /// The end of the instance, with its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<End>,
    /// Status updates expected on a cadence while this step is open (incident playbooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_updates: Option<Cadence>,
    /// The step after this one (for an approval: after it is approved; for a branch: when no
    /// case holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Located<String>>,
    /// For an approval: the step after a rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reject: Option<Located<String>>,
    /// For an approval or a wait with a timeout: the step after it expires (default `on_reject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_expire: Option<Located<String>>,
    /// The Discord channel (its id) messages about this step are posted in, instead of the
    /// workflow's (or direct messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_channel: Option<Located<String>>,
}

/// In the schema, what the validator checks first: a step carries exactly one kind key, so an
/// editor flags a step with none or two as it is typed.
fn exactly_one_kind(schema: &mut schemars::Schema) {
    let one_of: Vec<serde_json::Value> = StepKind::KEYS
        .iter()
        .map(|key| serde_json::json!({ "required": [key] }))
        .collect();
    schema.insert("oneOf".to_owned(), one_of.into());
}

/// Who a step is for: a role, or one person.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// A role of the workflow (`requester` for the person who started the instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Located<String>>,
    /// A person id from the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Located<String>>,
}

/// A form: typed fields, optionally in sections.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Form {
    /// Who fills it in (default: the requester).
    #[serde(default)]
    pub by: Option<Party>,
    /// Fields outside any section.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Sections, each with its fields. Field ids are unique across the whole form.
    #[serde(default)]
    pub sections: Vec<Section>,
}

/// A titled group of fields of a form.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Title of the section.
    pub title: String,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// A field of a form.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Identifier, used in expressions as `data.<step>.<field>`.
    pub id: Located<String>,
    /// What the field holds.
    #[serde(rename = "type")]
    pub ty: Located<FieldType>,
    /// The question shown to people.
    #[serde(default)]
    pub label: String,
    /// Help shown under the field.
    #[serde(default)]
    pub help: String,
    /// A value must be given.
    #[serde(default)]
    pub required: bool,
    /// Smallest number; for text, fewest characters; for a group or multi-choice, fewest items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest number; for text, most characters; for a group or multi-choice, most items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A regular expression text must match (e.g. `^CHG[0-9]+$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Located<String>>,
    /// The options of a choice or multi-choice: the values stored and compared in expressions
    /// (`legal_obligation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// What people are shown for some options, by value (`legal_obligation: "Legal obligation
    /// (art. 6(1)(c))"`); an option without one is shown with its underscores as spaces
    /// ("Legal obligation").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The fields of each item of a group (a repeated group, such as the risks of a DPIA).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<Field>,
}

/// An identifier as words: `legal_obligation` -> "Legal obligation".
#[must_use]
pub fn humanize(id: &str) -> String {
    let words = id.replace(['_', '-'], " ");
    let mut chars = words.trim().chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

impl Field {
    /// What people are shown for the option `value`.
    #[must_use]
    pub fn option_label(&self, value: &str) -> String {
        self.labels
            .get(value)
            .cloned()
            .unwrap_or_else(|| humanize(value))
    }
}

/// The type of a form field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Several paragraphs.
    LongText,
    /// A number.
    Number,
    /// Yes or no.
    Boolean,
    /// One of `options`.
    Choice,
    /// Several of `options`.
    MultiChoice,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A moment: an RFC 3339 time (`2026-03-02T22:00:00+01:00`), or a date `YYYY-MM-DD`
    /// (midnight UTC).
    Datetime,
    /// A person id from the directory.
    Person,
    /// An `http(s)://` link.
    Link,
    /// A repeated group of sub-fields: a list of objects.
    Group,
}

/// An approval gate.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// What the approver must check.
    #[serde(default)]
    pub instructions: String,
    /// Groups of approvers. The gate is approved when every group has its `count` of approvals
    /// (one group of count 1 = "any"; `count: all` = every member; several groups = "one DPO and
    /// one legal").
    pub approvers: Vec<ApproverGroup>,
    /// Rejections that reject the gate (default 1).
    #[serde(default = "one")]
    pub rejections: u32,
    /// Who may not approve, besides the requester.
    #[serde(default)]
    pub separation: Separation,
    /// Justification rules for approving and rejecting.
    #[serde(default)]
    pub justification: Justification,
    /// An approver may hand their decision to another holder of the same role.
    #[serde(default)]
    pub delegation: bool,
    /// An approver may take back their decision while the gate is open.
    #[serde(default)]
    pub revocable: bool,
    /// Deadline, reminders, escalation and what happens on expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// How people decide from a chat message (Discord): `buttons` (the default: Approve and
    /// Reject under the message, the justification typed in a form) or `link` (for high-risk
    /// gates: the message links to the gate's web page, where the decision is made; a button
    /// pressed anyway is refused).
    #[serde(default, skip_serializing_if = "ChatMode::is_default")]
    pub chat: ChatMode,
}

/// How a gate is decided from chat.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChatMode {
    /// Approve and Reject buttons; the justification in a form.
    #[default]
    Buttons,
    /// A link to the gate's web page only.
    Link,
}

impl ChatMode {
    /// Whether it is the default (not written out).
    #[must_use]
    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
    pub fn is_default(&self) -> bool {
        *self == Self::Buttons
    }
}

fn one() -> u32 {
    1
}

/// One group of approvers of a gate.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproverGroup {
    /// Name shown in the gate's progress (default: the role).
    #[serde(default)]
    pub name: Option<String>,
    /// Holders of this role may approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Located<String>>,
    /// These people may approve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<Located<String>>,
    /// Approvals needed from this group: a number, or `all`.
    #[serde(default)]
    pub count: Count,
    /// Only approvers for whom this CEL predicate holds count (variables: `approver` with `id`,
    /// `roles`, `team`; `data`; `requester`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Located<String>>,
}

/// How many approvals a group needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Count {
    /// This many.
    Number(u32),
    /// Every member of the group.
    All(AllWord),
}

impl Default for Count {
    fn default() -> Self {
        Self::Number(1)
    }
}

/// The word `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllWord {
    /// Every member.
    All,
}

/// Separation of duties.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Separation {
    /// The requester may approve their own request (default false).
    #[serde(default)]
    pub requester_may_approve: bool,
    /// CEL expression giving a list of person ids who may not approve (e.g. the author named in
    /// a form: `[data.request.author]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Located<String>>,
}

impl Approval {
    /// The rule a justification of `verdict` must meet, if the gate sets one.
    #[must_use]
    pub fn rule(&self, verdict: crate::engine::Verdict) -> Option<&TextRule> {
        match verdict {
            crate::engine::Verdict::Approve => self.justification.approve.as_ref(),
            crate::engine::Verdict::Reject => self.justification.reject.as_ref(),
        }
    }

    /// What a justification must say, per verdict, for people to read before they decide:
    /// "To reject: Why is this change rejected? (at least 10 characters)".
    #[must_use]
    pub fn asks(&self) -> Vec<String> {
        [
            ("To approve", &self.justification.approve),
            ("To reject", &self.justification.reject),
        ]
        .into_iter()
        .filter_map(|(verdict, rule)| {
            let rule = rule.as_ref()?;
            let prompt = if rule.prompt.trim().is_empty() {
                "say why"
            } else {
                rule.prompt.trim()
            };
            Some(format!(
                "{verdict}: {prompt} (at least {} characters)",
                rule.min_length
            ))
        })
        .collect()
    }
}

/// When a justification is required.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Justification {
    /// Rule for approving (none: optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<TextRule>,
    /// Rule for rejecting (none: optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject: Option<TextRule>,
}

/// A required text: how long, and what it must contain.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextRule {
    /// Fewest characters (default 1).
    #[serde(default = "one")]
    pub min_length: u32,
    /// A regular expression the text must match (e.g. a ticket: `[A-Z]+-[0-9]+`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Located<String>>,
    /// The prompt shown to the person.
    #[serde(default)]
    pub prompt: String,
}

/// A deadline on a gate.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    /// How long after the gate opens it expires.
    pub after: Located<Span>,
    /// Reminders to the approvers who have not decided, this long before the deadline.
    #[serde(default)]
    pub reminders: Vec<Located<Span>>,
    /// Escalation while the gate is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Escalation>,
    /// What happens on expiry: `expire` (default), `reject` or `approve`.
    #[serde(default)]
    pub on_expiry: ExpiryOutcome,
}

/// What an expired gate resolves to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryOutcome {
    /// Closed as expired; the instance follows `on_expire` (or `on_reject`).
    #[default]
    Expire,
    /// Closed as rejected.
    Reject,
    /// Closed as approved.
    Approve,
}

/// Escalation: after a while, others are told and may act.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// How long after the step opens.
    pub after: Located<Span>,
    /// Who is escalated to. On a gate they may then decide for every group.
    pub to: Party,
    /// Escalate again every `after`, up to this many times in all (default 1).
    #[serde(default = "one")]
    pub times: u32,
}

/// A checklist.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tasks {
    /// The items.
    #[serde(default)]
    pub items: Vec<TaskItem>,
    /// `step.field` of a group field whose items become tasks too (each item's `title`,
    /// `owner` and optional `due` date), e.g. a post-mortem's action items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_from: Option<Located<String>>,
    /// Remind owners of open items this often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<Located<Span>>,
    /// Escalate while items are open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Escalation>,
}

/// One task of a checklist.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskItem {
    /// Identifier, unique in the step.
    pub id: Located<String>,
    /// What to do.
    pub title: String,
    /// Who does it (default: the requester).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Party>,
    /// Due this long after the step opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Located<Span>>,
    /// The step waits for it (default true); an optional item may stay open.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// A message.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// Who is told.
    pub to: Vec<Party>,
    /// Subject, a template (`{{ data.request.service }}`, `{{ instance.id }}`).
    pub subject: Located<String>,
    /// Body, a template.
    #[serde(default)]
    pub body: Located<String>,
}

/// One case of a branch.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// A CEL condition over `data` and `requester`.
    pub when: Located<String>,
    /// The step taken when it holds.
    pub next: Located<String>,
}

/// Parallel branches.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parallel {
    /// The first step of each branch.
    pub branches: Vec<Located<String>>,
    /// The join step where they meet.
    pub join: Located<String>,
}

/// How a join waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JoinRule {
    /// For every branch.
    All,
    /// For the first branch; the others are closed.
    Any,
}

/// A pause.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    /// Wait this long.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Located<Span>>,
    /// Wait until this time: a CEL expression giving an RFC 3339 time or a `YYYY-MM-DD` date
    /// (e.g. `data.request.window_start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Located<String>>,
    /// Wait until this signal is sent to the instance (`signoff signal INSTANCE NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Located<String>>,
    /// With `signal`: give up after this long and follow `on_expire`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Located<Span>>,
    /// With `signal`: who may send it (roles and people). Without it, the requester and whoever
    /// filled in one of the instance's forms; the engine itself always may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Vec<Party>>,
}

/// Start another workflow.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartWorkflow {
    /// The workflow's id.
    pub workflow: Located<String>,
    /// Input for the new instance: name to CEL expression over this instance's data.
    #[serde(default)]
    pub input: BTreeMap<String, Located<String>>,
}

/// The end of an instance.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct End {
    /// The outcome, e.g. `approved`, `rejected`, `validated`, `resolved`.
    pub outcome: Located<String>,
    /// Whether this outcome is a success (`signoff wait` exits 0). Default: true unless the
    /// outcome is `rejected`, `expired`, `cancelled`, `denied`, `refused` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
}

impl End {
    /// Whether reaching this end counts as success.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.success.unwrap_or_else(|| {
            !matches!(
                self.outcome.as_str(),
                "rejected" | "expired" | "cancelled" | "denied" | "refused" | "failed"
            )
        })
    }
}

/// Status updates expected on a cadence.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cadence {
    /// An update is due this long after the step opens and after each update.
    pub every: Located<Span>,
    /// Who posts them (and is reminded when one is late).
    pub by: Party,
    /// Told when an update is a whole cadence overdue (default: nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<Party>,
}

/// The kind of a step, named by the key it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// `form:`
    Form,
    /// `approval:`
    Approval,
    /// `tasks:`
    Tasks,
    /// `notify:`
    Notify,
    /// `branch:`
    Branch,
    /// `parallel:`
    Parallel,
    /// `join:`
    Join,
    /// `wait:`
    Wait,
    /// `start_workflow:`
    StartWorkflow,
    /// `end:`
    End,
}

impl StepKind {
    /// Every kind key, in the order the documentation lists them.
    pub const KEYS: [&'static str; 10] = [
        "form",
        "approval",
        "tasks",
        "notify",
        "branch",
        "parallel",
        "join",
        "wait",
        "start_workflow",
        "end",
    ];
}

impl Step {
    /// What people call the step: its title, or its id when it has none.
    #[must_use]
    pub fn title_or_id(&self) -> &str {
        if self.title.is_empty() {
            self.id.as_str()
        } else {
            &self.title
        }
    }

    /// The kinds whose key this step carries (exactly one in a valid definition).
    #[must_use]
    pub fn kinds(&self) -> Vec<StepKind> {
        let present = [
            (self.form.is_some(), StepKind::Form),
            (self.approval.is_some(), StepKind::Approval),
            (self.tasks.is_some(), StepKind::Tasks),
            (self.notify.is_some(), StepKind::Notify),
            (self.branch.is_some(), StepKind::Branch),
            (self.parallel.is_some(), StepKind::Parallel),
            (self.join.is_some(), StepKind::Join),
            (self.wait.is_some(), StepKind::Wait),
            (self.start_workflow.is_some(), StepKind::StartWorkflow),
            (self.end.is_some(), StepKind::End),
        ];
        present
            .into_iter()
            .filter_map(|(on, kind)| on.then_some(kind))
            .collect()
    }

    /// The step's kind, when it has exactly one.
    #[must_use]
    pub fn kind(&self) -> Option<StepKind> {
        match self.kinds().as_slice() {
            [kind] => Some(*kind),
            _ => None,
        }
    }

    /// Every step this one can lead to, with the key that names it.
    #[must_use]
    pub fn successors(&self) -> Vec<(&'static str, &Located<String>)> {
        let mut out = Vec::new();
        if let Some(next) = &self.next {
            out.push(("next", next));
        }
        if let Some(s) = &self.on_reject {
            out.push(("on_reject", s));
        }
        if let Some(s) = &self.on_expire {
            out.push(("on_expire", s));
        }
        for case in self.branch.iter().flatten() {
            out.push(("branch", &case.next));
        }
        if let Some(p) = &self.parallel {
            for b in &p.branches {
                out.push(("parallel", b));
            }
        }
        out
    }
}

impl Form {
    /// Every top-level field, sections included, in order.
    pub fn all_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields
            .iter()
            .chain(self.sections.iter().flat_map(|s| s.fields.iter()))
    }
}

impl Definition {
    /// The step with this id.
    #[must_use]
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id.as_str() == id)
    }

    /// The first step and its form, when whoever starts an instance fills it in (a form with no
    /// `by`, or `by: {role: requester}`): what a start page or a chat command asks at once.
    #[must_use]
    pub fn starting_form(&self) -> Option<(&Step, &Form)> {
        let step = self.steps.first()?;
        let form = step.form.as_ref()?;
        let by_requester = form.by.as_ref().is_none_or(|party| {
            party.person.is_none()
                && party
                    .role
                    .as_ref()
                    .is_some_and(|r| r.as_str() == "requester")
        });
        by_requester.then_some((step, form))
    }
}
