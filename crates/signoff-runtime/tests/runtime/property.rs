//! For random command sequences (most of them refused), the state rebuilt from the log equals the
//! live state, after a restart too, and `state_at(T)` equals the state that was live at T. The
//! legal review excludes the reviewer a request names, so a request that names none stops it
//! (`signoff.step.failed`), and operators' retries are in the mix.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use signoff_core::Timestamp;
use signoff_core::engine::{Command, Instance, Verdict};

use crate::Env;

const PEOPLE: [&str; 8] = ["rita", "tom", "tess", "bea", "ben", "bo", "lea", "mia"];
const STEPS: [&str; 5] = ["request", "team-review", "cab", "legal-review", "together"];

#[derive(Clone, Debug)]
enum Op {
    Submit {
        risk: &'static str,
        team: &'static str,
        reviewer: Option<&'static str>,
    },
    Decide {
        step: usize,
        approve: bool,
        why: &'static str,
    },
    Revoke {
        step: usize,
    },
    Delegate {
        step: usize,
        to: usize,
    },
    Comment,
    Cancel,
    Retry {
        step: usize,
    },
    /// Let time pass and fire whatever timers are due.
    Wait {
        hours: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prop::sample::select(vec!["low", "high"]), prop::sample::select(vec!["payments", "search"]), reviewer())
            .prop_map(|(risk, team, reviewer)| Op::Submit { risk, team, reviewer }),
        6 => (0..STEPS.len(), any::<bool>(), prop::sample::select(vec!["", "looks fine", "not like this, no"]))
            .prop_map(|(step, approve, why)| Op::Decide { step, approve, why }),
        1 => (0..STEPS.len()).prop_map(|step| Op::Revoke { step }),
        1 => (0..STEPS.len(), 0..PEOPLE.len()).prop_map(|(step, to)| Op::Delegate { step, to }),
        1 => Just(Op::Comment),
        1 => Just(Op::Cancel),
        1 => (0..STEPS.len()).prop_map(|step| Op::Retry { step }),
        2 => (1u32..40).prop_map(|hours| Op::Wait { hours }),
    ]
}

fn reviewer() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec!["bo", "lea"]))
}

fn command(op: &Op) -> Option<Command> {
    Some(match op {
        Op::Submit {
            risk,
            team,
            reviewer,
        } => {
            let mut values = json!({"service": "db", "team": team, "risk": risk});
            if let Some(reviewer) = reviewer {
                values["reviewer"] = json!(reviewer);
            }
            let Value::Object(values) = values else {
                unreachable!()
            };
            Command::Submit {
                step: "request".into(),
                values,
            }
        }
        Op::Decide { step, approve, why } => Command::Decide {
            step: STEPS[*step].into(),
            verdict: if *approve {
                Verdict::Approve
            } else {
                Verdict::Reject
            },
            justification: (*why).into(),
            shown: None,
        },
        Op::Revoke { step } => Command::Revoke {
            step: STEPS[*step].into(),
            reason: "changed my mind".into(),
        },
        Op::Delegate { step, to } => Command::Delegate {
            step: STEPS[*step].into(),
            to: PEOPLE[*to].into(),
            reason: String::new(),
        },
        Op::Comment => Command::Comment {
            text: "a note".into(),
        },
        Op::Cancel => Command::Cancel {
            reason: "no longer needed".into(),
        },
        Op::Retry { step } => Command::Retry {
            step: STEPS[*step].into(),
        },
        Op::Wait { .. } => return None,
    })
}

/// Who tries `op`: mostly someone who may (so commands get through and the instance moves
/// through its gates, timers and join), sometimes anyone (so refusals are exercised too).
fn actor(op: &Op, pick: usize, anyone: bool) -> &'static str {
    let may: &[&str] = match op {
        _ if anyone => &PEOPLE,
        Op::Decide { step, .. } | Op::Revoke { step } | Op::Delegate { step, .. } => {
            match STEPS[*step] {
                "team-review" => &["tom", "tess"],
                "cab" => &["bea", "ben", "bo"],
                "legal-review" => &["bo", "lea"],
                _ => &["rita"],
            }
        }
        Op::Retry { .. } => &["mia"],
        _ => &["rita"],
    };
    may[pick % may.len()]
}

/// The fixture's deployment, with an optional `reviewer` the legal review excludes, and an
/// operator in the directory.
fn with_fragile_legal_review(env: &Env) {
    let root = env.dir.path();
    let path = root.join("workflows/deploy.yaml");
    let text = std::fs::read_to_string(&path).expect("deploy.yaml");
    let fragile = text
        .replace(
            "          options: [low, high]\n          required: true\n",
            "          options: [low, high]\n          required: true\n        - id: reviewer\n          type: text\n",
        )
        .replace(
            "        - role: legal\n    next: together\n",
            "        - role: legal\n      separation:\n        exclude: \"[data.request.reviewer]\"\n    next: together\n",
        );
    assert_ne!(fragile, text, "the fixture changed: update this test");
    std::fs::write(&path, fragile).expect("write deploy.yaml");
    let mut people = std::fs::read_to_string(root.join("people.yaml")).expect("people.yaml");
    people.push_str("  - id: mia\n    name: Mia Operator\n    roles: [operator]\n");
    std::fs::write(root.join("people.yaml"), people).expect("write people.yaml");
}

async fn run(
    first: (&'static str, &'static str, Option<&'static str>),
    ops: Vec<(Op, usize, bool)>,
) -> Result<(), TestCaseError> {
    let env = Env::sqlite();
    with_fragile_legal_review(&env);
    let rt = env.open().await;
    let id = rt
        .start("deploy", Value::Object(Map::new()), "rita", "cli")
        .await
        .expect("start")
        .instance;
    // Requested first, so most cases reach a gate.
    let (risk, team, reviewer) = first;
    let submitted = command(&Op::Submit {
        risk,
        team,
        reviewer,
    })
    .expect("a command");
    rt.execute(&id, submitted, "rita", "cli", None)
        .await
        .expect("the request");
    let mut live: Vec<(Timestamp, Instance)> =
        vec![(rt.now(), rt.load(&id).await.expect("load").state)];
    for (op, pick, anyone) in ops {
        let who = actor(&op, pick, anyone);
        env.advance(1);
        if let Op::Wait { hours } = op {
            env.advance(i64::from(hours) * 3_600);
            rt.fire_due_timers().await.expect("timers");
        } else if let Some(command) = command(&op) {
            // Most random commands are refused; a refusal must change nothing.
            let before = rt.load(&id).await.expect("load").state;
            if rt.execute(&id, command, who, "cli", None).await.is_err() {
                prop_assert_eq!(&rt.load(&id).await.expect("load").state, &before);
            }
        }
        live.push((rt.now(), rt.load(&id).await.expect("load").state));
    }
    // Replaying the log gives the live state; so does a restarted runtime.
    let (_, last) = live.last().expect("at least the start").clone();
    let replayed = signoff_core::engine::replay(
        &id,
        rt.instance_events(&id)
            .await
            .expect("events")
            .iter()
            .map(|(_, e)| e),
    );
    prop_assert_eq!(&replayed, &last);
    // The live process's read models are what a rebuild from the log makes.
    rt.save_projections().await.expect("save");
    let rebuilt = signoff_runtime::projections::check(&env.fresh().await)
        .await
        .expect("check");
    prop_assert!(rebuilt.rows > 0);
    prop_assert_eq!(rebuilt.count, 0, "{:#?}", rebuilt.differences);
    drop(rt);
    let rt = env.open().await;
    prop_assert_eq!(
        &rt.load(&id).await.expect("load after restart").state,
        &last
    );
    let rebuilt = signoff_runtime::projections::check(&env.fresh().await)
        .await
        .expect("check");
    prop_assert_eq!(rebuilt.count, 0, "{:#?}", rebuilt.differences);
    // And the state at each past moment is the one that was live then.
    for (at, state) in &live {
        prop_assert_eq!(&rt.state_at(&id, *at).await.expect("state at").state, state);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_log_gives_the_live_state_at_every_moment(
        risk in prop::sample::select(vec!["low", "high"]),
        team in prop::sample::select(vec!["payments", "search"]),
        reviewer in reviewer(),
        ops in prop::collection::vec((op(), 0..PEOPLE.len(), prop::bool::weighted(0.2)), 1..30)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(run((risk, team, reviewer), ops))?;
    }
}
