//! Reading `people.yaml`: every problem with its line and column.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::Person;
use crate::workflow::parse::{has_content, reader_error};
use crate::workflow::{Located, Position, Problem};

/// Largest directory file accepted, in bytes.
pub const MAX_DIRECTORY_BYTES: usize = 4 * 1024 * 1024;

/// Longest person id accepted, in characters.
pub const MAX_ID_CHARS: usize = 64;

/// A directory file, read and checked: ids well formed and unique, emails and Discord ids unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryFile {
    pub(super) people: BTreeMap<String, Person>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    people: Vec<RawPerson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    id: Located<String>,
    name: Located<String>,
    #[serde(default)]
    email: Option<Located<String>>,
    #[serde(default)]
    discord: Option<Located<String>>,
    #[serde(default)]
    team: Option<Located<String>>,
    #[serde(default)]
    roles: Vec<Located<String>>,
}

impl DirectoryFile {
    /// Reads and checks a directory file.
    ///
    /// # Errors
    /// Every problem found, each with its line and column: YAML syntax, unknown keys, malformed or
    /// duplicate ids, malformed emails or Discord ids, an email or Discord id given to two people,
    /// empty names, teams or role names.
    pub fn parse(file_name: &str, text: &str) -> Result<Self, Vec<Problem>> {
        if text.len() > MAX_DIRECTORY_BYTES {
            return Err(vec![Problem::new(
                file_name,
                Position::default(),
                format!(
                    "the file is {} bytes; a directory may be at most {MAX_DIRECTORY_BYTES}",
                    text.len()
                ),
            )]);
        }
        if !has_content(text) {
            return Err(vec![
                Problem::new(file_name, Position::default(), "the file is empty")
                    .hint("write `people: []` for a directory with nobody in it"),
            ]);
        }
        // The YAML reader is meant never to panic; this keeps a broken file from taking the
        // caller down should it ever break that promise.
        let raw = match std::panic::catch_unwind(|| serde_saphyr::from_str::<RawFile>(text)) {
            Ok(Ok(raw)) => raw,
            Ok(Err(error)) => return Err(vec![yaml_problem(file_name, text, &error)]),
            Err(_) => {
                return Err(vec![Problem::new(
                    file_name,
                    Position::default(),
                    "the YAML reader failed on this file",
                )]);
            }
        };
        let mut checker = Checker::new(file_name);
        for person in raw.people {
            checker.person(person);
        }
        if checker.problems.is_empty() {
            Ok(checker.file)
        } else {
            Err(checker.problems)
        }
    }

    /// The people of the file, by id.
    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.people.values()
    }

    /// One person of the file.
    #[must_use]
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.get(id)
    }
}

/// Checks entries one by one, remembering what earlier entries claimed.
struct Checker<'a> {
    file_name: &'a str,
    file: DirectoryFile,
    problems: Vec<Problem>,
    /// Every well-formed id seen, at its first entry (faulty entries too, so a second entry
    /// with the same id is reported whatever was wrong with the first).
    ids: BTreeMap<String, Position>,
    emails: BTreeMap<String, (String, Position)>,
    discords: BTreeMap<String, (String, Position)>,
}

impl<'a> Checker<'a> {
    fn new(file_name: &'a str) -> Self {
        Self {
            file_name,
            file: DirectoryFile::default(),
            problems: Vec::new(),
            ids: BTreeMap::new(),
            emails: BTreeMap::new(),
            discords: BTreeMap::new(),
        }
    }

    fn problem(&mut self, at: Position, message: String, hint: Option<&str>) {
        let problem = Problem::new(self.file_name, at, message);
        self.problems.push(match hint {
            Some(hint) => problem.hint(hint),
            None => problem,
        });
    }

    fn person(&mut self, raw: RawPerson) {
        let id = raw.id.as_str();
        let before = self.problems.len();
        if let Err(why) = check_id(id) {
            self.problem(
                raw.id.at,
                format!("person id {id:?} {why}"),
                Some("ids are lowercase letters, digits, '.', '-' and '_', e.g. `alice.martin`"),
            );
        } else if let Some(first) = self.ids.get(id).copied() {
            self.problem(
                raw.id.at,
                format!("person id {id:?} is already used at line {}", first.line),
                Some("each person appears once; merge the two entries"),
            );
        } else {
            self.ids.insert(id.to_owned(), raw.id.at);
        }
        if raw.name.trim().is_empty() {
            self.problem(
                raw.name.at,
                format!("person {id:?} has an empty name"),
                None,
            );
        }
        if let Some(team) = &raw.team
            && team.trim().is_empty()
        {
            self.problem(team.at, format!("person {id:?} has an empty team"), None);
        }
        if let Some(email) = &raw.email {
            self.email(id, email);
        }
        if let Some(discord) = &raw.discord {
            self.discord(id, discord);
        }
        let mut roles = BTreeSet::new();
        for role in &raw.roles {
            if role.trim().is_empty() {
                self.problem(
                    role.at,
                    format!("person {id:?} has an empty role name"),
                    None,
                );
            } else if role.as_str() != role.trim() {
                self.problem(
                    role.at,
                    format!(
                        "role {:?} of person {id:?} has spaces around it",
                        role.as_str()
                    ),
                    None,
                );
            } else {
                roles.insert(role.value.clone());
            }
        }
        if self.problems.len() > before {
            return;
        }
        let person = Person {
            id: id.to_owned(),
            name: raw.name.value,
            email: raw.email.map(|e| e.value),
            discord: raw.discord.map(|d| d.value),
            team: raw.team.map(|t| t.value),
            roles,
        };
        self.file.people.insert(person.id.clone(), person);
    }

    fn email(&mut self, id: &str, email: &Located<String>) {
        let text = email.as_str();
        let well_formed = match text.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !text.chars().any(char::is_whitespace)
            }
            None => false,
        };
        if !well_formed {
            self.problem(
                email.at,
                format!("email {text:?} of person {id:?} is not an address"),
                Some("write it as `name@example.com`"),
            );
            return;
        }
        let key = text.to_ascii_lowercase();
        if let Some((other, at)) = self.emails.get(&key).cloned() {
            self.problem(
                email.at,
                format!(
                    "email {text:?} of person {id:?} is also {other:?}'s (line {})",
                    at.line
                ),
                Some("an address identifies one person, so replies can be matched to them"),
            );
        } else {
            self.emails.insert(key, (id.to_owned(), email.at));
        }
    }

    fn discord(&mut self, id: &str, discord: &Located<String>) {
        let text = discord.as_str();
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            self.problem(
                discord.at,
                format!("Discord id {text:?} of person {id:?} is not a Discord user id"),
                Some(
                    "use the numeric user id (Discord: Settings > Advanced > Developer Mode, then \
                     right-click the user > Copy User ID), in quotes",
                ),
            );
            return;
        }
        if let Some((other, at)) = self.discords.get(text).cloned() {
            self.problem(
                discord.at,
                format!(
                    "Discord id {text:?} of person {id:?} is also {other:?}'s (line {})",
                    at.line
                ),
                Some("a Discord account identifies one person"),
            );
        } else {
            self.discords
                .insert(text.to_owned(), (id.to_owned(), discord.at));
        }
    }
}

/// Why `id` is not a person id, if it is not.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty".into());
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!("is longer than {MAX_ID_CHARS} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')))
    {
        return Err(format!("contains {c:?}"));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit".into());
    }
    Ok(())
}

fn yaml_problem(file: &str, text: &str, error: &serde_saphyr::Error) -> Problem {
    let (at, message) = reader_error(text, error);
    let problem = Problem::new(file, at, &message);
    let hint = if message.contains("unknown field") && message.ends_with("one of people") {
        "the file has one key, `people:`, a list of people"
    } else if message.contains("unknown field") {
        "a person has: id, name, email, discord, team, roles"
    } else if message.contains("missing field") {
        "every person needs an `id` and a `name`; the file needs `people:`"
    } else if message.contains("duplicate mapping key") {
        "each key appears once per person"
    } else if message.contains("expected sequence") {
        "write a list, e.g. `roles: [dpo, legal]`"
    } else {
        return problem;
    };
    problem.hint(hint)
}
