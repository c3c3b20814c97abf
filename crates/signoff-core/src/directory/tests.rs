use super::*;

const PEOPLE: &str = "\
people:
  - id: alice
    name: Alice Martin
    email: alice@example.com
    discord: \"123456789012345678\"
    team: payments
    roles: [dpo, legal]
  - id: bob
    name: Bob Stone
    roles: [legal]
  - id: carol
    name: Carol Diaz
";

fn file(text: &str) -> DirectoryFile {
    DirectoryFile::parse("people.yaml", text).unwrap_or_else(|problems| {
        panic!(
            "{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// The problems of a file that must be refused, as `line:column: message`.
fn problems(text: &str) -> Vec<String> {
    match DirectoryFile::parse("people.yaml", text) {
        Ok(_) => panic!("the file was accepted"),
        Err(problems) => problems
            .iter()
            .map(|p| format!("{}: {}", p.at, p.message))
            .collect(),
    }
}

fn loaded(text: &str) -> Directory {
    let mut directory = Directory::default();
    for event in directory.diff(&file(text)) {
        directory.apply(&event);
    }
    directory
}

fn granted(person: &str, role: &str) -> DirectoryEvent {
    DirectoryEvent::RoleGranted {
        person: person.into(),
        role: role.into(),
    }
}

fn revoked(person: &str, role: &str) -> DirectoryEvent {
    DirectoryEvent::RoleRevoked {
        person: person.into(),
        role: role.into(),
    }
}

#[test]
fn a_file_reads_into_people() {
    let f = file(PEOPLE);
    let alice = f.person("alice").expect("alice");
    assert_eq!(alice.name, "Alice Martin");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.discord.as_deref(), Some("123456789012345678"));
    assert_eq!(alice.team.as_deref(), Some("payments"));
    assert_eq!(alice.roles.iter().collect::<Vec<_>>(), ["dpo", "legal"]);
    assert_eq!(f.person("carol").map(|p| p.roles.len()), Some(0));
    assert_eq!(f.people().count(), 3);
}

#[test]
fn an_unquoted_discord_id_is_read_as_its_digits() {
    let f = file("people:\n  - id: a\n    name: A\n    discord: 123456789012345678\n");
    assert_eq!(
        f.person("a").and_then(|p| p.discord.as_deref()),
        Some("123456789012345678")
    );
}

#[test]
fn an_empty_directory_is_a_directory() {
    assert_eq!(file("people: []\n").people().count(), 0);
}

#[test]
fn unknown_keys_are_refused_with_their_position() {
    let found = problems("people:\n  - id: alice\n    name: Alice\n    mail: a@b.c\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("4:5: "), "{found:?}");
    assert!(found[0].contains("mail"), "{found:?}");
    let hint = DirectoryFile::parse("people.yaml", "people:\n  - id: a\n    name: A\n    x: 1\n")
        .err()
        .and_then(|p| p[0].hint.clone());
    assert!(hint.is_some_and(|h| h.contains("discord")));
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let found = problems("people:\n  - id: alice\n    name: [Alice\n");
    assert_eq!(found.len(), 1);
    assert!(!found[0].starts_with("0:0"), "{found:?}");
    let missing = problems("people:\n  - id: alice\n");
    assert!(missing[0].contains("name"), "{missing:?}");
    let twice = problems("people:\n  - id: a\n    name: A\n    name: B\n");
    assert_eq!(twice, ["4:5: duplicate mapping key: name"]);
    assert_eq!(problems(" \n"), ["0:0: the file is empty"]);
}

#[test]
fn duplicate_ids_are_refused_at_the_second_entry() {
    let found = problems("people:\n  - id: bob\n    name: A\n  - id: bob\n    name: B\n");
    assert_eq!(found, ["4:9: person id \"bob\" is already used at line 2"]);
    // Also when the first entry had a problem of its own.
    let found = problems("people:\n  - id: bob\n    name: ''\n  - id: bob\n    name: B\n");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[1].starts_with("4:9: person id \"bob\" is already used"),
        "{found:?}"
    );
}

#[test]
fn malformed_ids_are_refused() {
    let found = problems(
        "people:\n  - id: Alice\n    name: A\n  - id: -x\n    name: X\n  - id: \"\"\n    name: E\n  - id: a b\n    name: S\n",
    );
    assert_eq!(
        found,
        [
            "2:9: person id \"Alice\" contains 'A'",
            "4:9: person id \"-x\" must start with a letter or digit",
            "6:9: person id \"\" is empty",
            "8:9: person id \"a b\" contains ' '",
        ]
    );
}

#[test]
fn malformed_emails_and_discord_ids_and_empty_roles_are_refused() {
    let found = problems(
        "people:
  - id: a
    name: A
    email: a.example.com
    discord: \"@alice\"
    roles: [dpo, \"\", \" \"]
",
    );
    assert_eq!(
        found,
        [
            "4:12: email \"a.example.com\" of person \"a\" is not an address",
            "5:14: Discord id \"@alice\" of person \"a\" is not a Discord user id",
            "6:18: person \"a\" has an empty role name",
            "6:22: person \"a\" has an empty role name",
        ]
    );
}

#[test]
fn an_email_or_discord_id_identifies_one_person() {
    let found = problems(
        "people:
  - id: a
    name: A
    email: Same@Example.com
    discord: \"42\"
  - id: b
    name: B
    email: same@example.com
    discord: \"42\"
",
    );
    assert_eq!(
        found,
        [
            "8:12: email \"same@example.com\" of person \"b\" is also \"a\"'s (line 4)",
            "9:14: Discord id \"42\" of person \"b\" is also \"a\"'s (line 5)",
        ]
    );
}

#[test]
fn diff_of_an_empty_state_adds_people_then_grants_roles() {
    let events = Directory::default().diff(&file(PEOPLE));
    let types: Vec<_> = events.iter().map(DirectoryEvent::event_type).collect();
    assert_eq!(
        types,
        [
            "signoff.directory.person_added",
            "signoff.directory.person_added",
            "signoff.directory.person_added",
            "signoff.directory.role_granted",
            "signoff.directory.role_granted",
            "signoff.directory.role_granted",
        ]
    );
    assert_eq!(
        events[3..],
        [
            granted("alice", "dpo"),
            granted("alice", "legal"),
            granted("bob", "legal")
        ]
    );
}

#[test]
fn diff_updates_grants_revokes_and_removes() {
    let before = loaded(PEOPLE);
    let after = file(
        "people:
  - id: alice
    name: Alice Martin
    email: alice@example.org
    discord: \"123456789012345678\"
    team: payments
    roles: [legal, risk]
  - id: carol
    name: Carol Diaz
    roles: [dpo]
  - id: dave
    name: Dave Ng
",
    );
    let events = before.diff(&after);
    let alice = after.person("alice").expect("alice").profile();
    assert_eq!(
        events,
        [
            revoked("alice", "dpo"),
            revoked("bob", "legal"),
            DirectoryEvent::PersonRemoved { id: "bob".into() },
            DirectoryEvent::PersonUpdated(alice),
            DirectoryEvent::PersonAdded(after.person("dave").expect("dave").profile()),
            granted("alice", "risk"),
            granted("carol", "dpo"),
        ]
    );
}

#[test]
fn applying_the_diff_gives_the_file_and_a_second_diff_is_empty() {
    let mut state = loaded(PEOPLE);
    let target = file(
        "people:\n  - id: bob\n    name: Robert Stone\n    team: infra\n    roles: [dpo]\n  - id: erin\n    name: Erin\n    roles: [legal, dpo]\n",
    );
    for event in state.diff(&target) {
        state.apply(&event);
    }
    assert_eq!(
        state.people().collect::<Vec<_>>(),
        target.people().collect::<Vec<_>>()
    );
    assert!(state.diff(&target).is_empty());
    assert!(loaded(PEOPLE).diff(&file(PEOPLE)).is_empty());
}

#[test]
fn holders_are_sorted_and_lookups_find_one_person() {
    let directory = loaded(
        "people:
  - id: zoe
    name: Zoe
    roles: [legal]
  - id: adam
    name: Adam
    email: Adam@Example.com
    roles: [legal]
  - id: mia
    name: Mia
    discord: \"77\"
    roles: [legal, dpo]
",
    );
    assert_eq!(directory.holders("legal"), ["adam", "mia", "zoe"]);
    assert_eq!(directory.holders("dpo"), ["mia"]);
    assert!(directory.holders("nobody").is_empty());
    assert!(directory.holds("mia", "dpo"));
    assert!(!directory.holds("zoe", "dpo"));
    assert!(!directory.holds("ghost", "legal"));
    let by_email = directory
        .find_by_email("adam@example.com")
        .map(|p| p.id.as_str());
    assert_eq!(by_email, Some("adam"));
    assert_eq!(
        directory.find_by_discord("77").map(|p| p.id.as_str()),
        Some("mia")
    );
    assert!(directory.find_by_discord("78").is_none());
}

#[test]
fn a_removed_person_loses_every_role_before_leaving() {
    let mut state = loaded(PEOPLE);
    let events = state.diff(&file("people: []\n"));
    assert_eq!(
        events,
        [
            revoked("alice", "dpo"),
            revoked("alice", "legal"),
            revoked("bob", "legal"),
            DirectoryEvent::PersonRemoved { id: "alice".into() },
            DirectoryEvent::PersonRemoved { id: "bob".into() },
            DirectoryEvent::PersonRemoved { id: "carol".into() },
        ]
    );
    // Role history alone answers "who held legal": replay only the role events.
    let mut holders = std::collections::BTreeSet::new();
    for event in Directory::default()
        .diff(&file(PEOPLE))
        .iter()
        .chain(&events)
    {
        match event {
            DirectoryEvent::RoleGranted { person, role } if role == "legal" => {
                holders.insert(person.clone());
            }
            DirectoryEvent::RoleRevoked { person, role } if role == "legal" => {
                holders.remove(person);
            }
            _ => {}
        }
    }
    assert!(holders.is_empty());
    for event in &events {
        state.apply(event);
    }
    assert_eq!(state, Directory::default());
}

#[test]
fn events_round_trip_through_type_and_data() {
    let mut events = Directory::default().diff(&file(PEOPLE));
    events.extend(loaded(PEOPLE).diff(&file("people: []\n")));
    events.push(DirectoryEvent::PersonUpdated(
        file(PEOPLE).person("bob").expect("bob").profile(),
    ));
    for event in &events {
        assert!(TYPES.contains(&event.event_type()));
        let data = event.data().to_string();
        assert_eq!(
            DirectoryEvent::decode(event.event_type(), &data).as_ref(),
            Ok(event)
        );
    }
    let all: std::collections::BTreeSet<_> =
        events.iter().map(DirectoryEvent::event_type).collect();
    assert_eq!(all.len(), TYPES.len());
    assert_eq!(
        granted("a", "dpo").data(),
        serde_json::json!({ "person": "a", "role": "dpo" })
    );
    assert!(DirectoryEvent::decode("signoff.instance.started", "{}").is_err());
    assert!(DirectoryEvent::decode("signoff.directory.role_granted", "{}").is_err());
}
