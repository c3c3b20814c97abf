//! The directory as the log tells it, and the events that bring it to a file.

use std::collections::BTreeMap;

use super::{DirectoryEvent, DirectoryFile, Person};

/// The directory as folded from its events: who exists and which roles they hold now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    people: BTreeMap<String, Person>,
}

impl Directory {
    /// The state after `events`, in order.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a DirectoryEvent>) -> Self {
        let mut directory = Self::default();
        for event in events {
            directory.apply(event);
        }
        directory
    }

    /// Folds one event into the state. Total: an event that does not fit (a grant to someone
    /// absent) changes nothing, since [`Directory::diff`] never produces one.
    pub fn apply(&mut self, event: &DirectoryEvent) {
        match event {
            DirectoryEvent::PersonAdded(profile) | DirectoryEvent::PersonUpdated(profile) => {
                let roles = self
                    .people
                    .remove(&profile.id)
                    .map(|p| p.roles)
                    .unwrap_or_default();
                self.people
                    .insert(profile.id.clone(), Person::from_profile(profile, roles));
            }
            DirectoryEvent::PersonRemoved { id } => {
                self.people.remove(id);
            }
            DirectoryEvent::RoleGranted { person, role } => {
                if let Some(p) = self.people.get_mut(person) {
                    p.roles.insert(role.clone());
                }
            }
            DirectoryEvent::RoleRevoked { person, role } => {
                if let Some(p) = self.people.get_mut(person) {
                    p.roles.remove(role);
                }
            }
        }
    }

    /// One person.
    #[must_use]
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.get(id)
    }

    /// Whether `person` holds `role` now.
    #[must_use]
    pub fn holds(&self, person: &str, role: &str) -> bool {
        self.people
            .get(person)
            .is_some_and(|p| p.roles.contains(role))
    }

    /// The ids of everyone holding `role`, sorted.
    #[must_use]
    pub fn holders(&self, role: &str) -> Vec<String> {
        self.people
            .values()
            .filter(|p| p.roles.contains(role))
            .map(|p| p.id.clone())
            .collect()
    }

    /// The person with this email address (compared without regard to ASCII case). `None` when
    /// nobody, or more than one person, has it: an ambiguous address identifies no one.
    #[must_use]
    pub fn find_by_email(&self, email: &str) -> Option<&Person> {
        unique(self.people.values().filter(|p| {
            p.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        }))
    }

    /// The person with this Discord user id; `None` when nobody, or more than one person, has it.
    #[must_use]
    pub fn find_by_discord(&self, discord: &str) -> Option<&Person> {
        unique(
            self.people
                .values()
                .filter(|p| p.discord.as_deref() == Some(discord)),
        )
    }

    /// The directory of exactly these people (as [`Directory::people`] lists them), for a
    /// process that kept them rather than their events.
    pub fn from_people(people: impl IntoIterator<Item = Person>) -> Self {
        Self {
            people: people.into_iter().map(|p| (p.id.clone(), p)).collect(),
        }
    }

    /// Everyone, sorted by id.
    pub fn people(&self) -> impl Iterator<Item = &Person> {
        self.people.values()
    }

    /// The events that bring this state to `file`. Deterministic: first every revocation (of
    /// people staying and leaving), then removals, then additions and updates, then grants, each
    /// group sorted by person id and role. Revoking before granting means no prefix of the batch
    /// gives anyone a role that neither the old state nor the file gives them; a removed person has
    /// each role revoked explicitly, so role history is readable from role events alone.
    #[must_use]
    pub fn diff(&self, file: &DirectoryFile) -> Vec<DirectoryEvent> {
        let mut revocations = Vec::new();
        let mut removals = Vec::new();
        let mut profiles = Vec::new();
        let mut grants = Vec::new();
        for (id, old) in &self.people {
            let kept = file.person(id).map(|p| &p.roles);
            for role in &old.roles {
                if !kept.is_some_and(|roles| roles.contains(role)) {
                    revocations.push(DirectoryEvent::RoleRevoked {
                        person: id.clone(),
                        role: role.clone(),
                    });
                }
            }
            if kept.is_none() {
                removals.push(DirectoryEvent::PersonRemoved { id: id.clone() });
            }
        }
        for (id, new) in &file.people {
            let old = self.people.get(id);
            match old {
                None => profiles.push(DirectoryEvent::PersonAdded(new.profile())),
                Some(old) if old.profile() != new.profile() => {
                    profiles.push(DirectoryEvent::PersonUpdated(new.profile()));
                }
                Some(_) => {}
            }
            for role in &new.roles {
                if !old.is_some_and(|o| o.roles.contains(role)) {
                    grants.push(DirectoryEvent::RoleGranted {
                        person: id.clone(),
                        role: role.clone(),
                    });
                }
            }
        }
        revocations
            .into_iter()
            .chain(removals)
            .chain(profiles)
            .chain(grants)
            .collect()
    }
}

/// The only item, if there is exactly one.
fn unique<T>(mut items: impl Iterator<Item = T>) -> Option<T> {
    let first = items.next()?;
    items.next().is_none().then_some(first)
}
