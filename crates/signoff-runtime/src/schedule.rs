//! Cron schedules: when a workflow with a `cron` trigger starts by itself.
//!
//! An expression is the standard 5-field crontab form (minute hour day-of-month month
//! day-of-week), read in a time zone, so `30 2 * * *` in `Europe/Berlin` means half past two on
//! Berlin's clocks, whatever the season. The 6- and 7-field forms (seconds, years) and `@daily`
//! style nicknames are refused so that a schedule means the same to everyone who reads it.
//!
//! Days when the clocks change follow croner (and Vixie cron): a fixed-time job whose time falls
//! in the hour skipped in spring runs once, at the first minute after the gap (03:00 for
//! `30 2 * * *` in Berlin); one whose time happens twice in autumn runs once, the first time.
//! Jobs with `*` or steps in the minute or hour run at every matching time the clock shows.

use std::fmt;
use std::str::FromStr;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use signoff_core::engine::SYSTEM;
use signoff_core::{RecordedEvent, StreamId, Timestamp};
use signoff_store::{AppendRequest, ExpectedVersion, StoreError};

use crate::error::RuntimeError;
use crate::events::{SCHEDULE_ARMED, SCHEDULE_FIRED, corrupt, derived_instance_id, new_event};
use crate::runtime::{Reaction, Runtime};

/// The fields of a crontab expression, in order.
const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];

/// A parsed cron expression and the time zone its clock times are read in.
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    zone: Tz,
    cron: Cron,
}

impl Schedule {
    /// Reads a 5-field crontab expression in `timezone` (an IANA name such as `Europe/Berlin`;
    /// UTC when `None`). Day-of-week counts as crontab does: 0 and 7 are Sunday, 1 is Monday;
    /// names (`MON`, `JAN`) work too. When both day fields are restricted, a day matching either
    /// runs, as in crontab.
    ///
    /// # Errors
    /// A sentence for the person who wrote the schedule: wrong number of fields, which field is
    /// invalid and why, or an unknown time zone.
    pub fn parse(expr: &str, timezone: Option<&str>) -> Result<Self, String> {
        let zone = match timezone {
            None => Tz::UTC,
            Some(name) => Tz::from_str(name.trim()).map_err(|_| {
                format!(
                    "unknown time zone {name:?}: use an IANA name such as \"Europe/Berlin\", \
                     \"America/New_York\" or \"UTC\""
                )
            })?,
        };
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if expr.contains('@') {
            return Err(format!(
                "{expr:?} is a nickname; write the 5 fields (minute hour day-of-month month \
                 day-of-week), e.g. \"0 0 * * *\" for daily at midnight"
            ));
        }
        if fields.len() != 5 {
            let extra = if fields.len() > 5 {
                " (forms with seconds or a year are not accepted)"
            } else {
                ""
            };
            return Err(format!(
                "{expr:?} has {} field(s); a crontab schedule has 5: minute hour day-of-month \
                 month day-of-week{extra}",
                fields.len()
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        // Each field alone first, so the message can say which one is wrong.
        for (i, field) in fields.iter().enumerate() {
            let mut alone = ["*"; 5];
            alone[i] = field;
            if let Err(error) = parser.parse(&alone.join(" ")) {
                return Err(format!(
                    "the {} field {field:?} of {expr:?} is invalid: {}",
                    FIELDS[i],
                    describe(&error)
                ));
            }
        }
        let cron = parser
            .parse(&fields.join(" "))
            .map_err(|error| format!("{expr:?} is invalid: {}", describe(&error)))?;
        Ok(Self {
            expression: fields.join(" "),
            zone,
            cron,
        })
    }

    /// The first occurrence strictly after `after`, or `None` if there is none (a date that
    /// never comes, such as `0 0 30 2 *`).
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut from = after.with_timezone(&self.zone);
        // croner works in whole seconds; a result not strictly later (possible when `after`
        // has a fraction of a second) is passed over. Two rounds are enough; four is a margin.
        for _ in 0..4 {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            if next > from && next.with_timezone(&Utc) > after {
                return Some(next.with_timezone(&Utc));
            }
            from = next;
        }
        None
    }

    /// The expression, with its fields separated by single spaces.
    #[must_use]
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is read in.
    #[must_use]
    pub fn timezone(&self) -> Tz {
        self.zone
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.zone.name())
    }
}

/// croner's message, without its type-name prefixes.
fn describe(error: &croner::errors::CronError) -> String {
    let text = error.to_string();
    ["Component error: ", "Invalid pattern: "]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .unwrap_or(&text)
        .to_owned()
}

/// Schedules' streams are `schedule/<workflow>`.
pub use crate::events::SCHEDULE_STREAM_PREFIX as STREAM_PREFIX;

/// After a stop spanning several runs of a schedule, only the latest is started (as anacron
/// does); this bounds how many missed runs are stepped over to find it.
const MAX_STEPS: usize = 100_000;

/// What the log says of a workflow's schedules: the stream's version and each trigger's last
/// run (or the moment it was armed), by trigger key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    version: u64,
    last: HashMap<String, Timestamp>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Armed {
    workflow: String,
    trigger: String,
    at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
struct Fired {
    workflow: String,
    trigger: String,
    /// The run's time, as the schedule says (not when it was noticed).
    scheduled: Timestamp,
    instance: String,
    requester: String,
    input: Value,
}

impl Runs {
    /// Folds one event of the workflow's schedule stream; a run asks for its instance to start.
    pub(crate) fn apply(&mut self, record: &RecordedEvent) -> Result<Option<Reaction>, String> {
        self.version = record.version;
        let data = record.data.as_str();
        match record.ty.as_str() {
            SCHEDULE_ARMED => {
                let armed: Armed = serde_json::from_str(data).map_err(|e| e.to_string())?;
                self.last.insert(armed.trigger, armed.at);
                Ok(None)
            }
            SCHEDULE_FIRED => {
                let fired: Fired = serde_json::from_str(data).map_err(|e| e.to_string())?;
                self.last.insert(fired.trigger, fired.scheduled);
                Ok(Some(Reaction {
                    id: fired.instance,
                    workflow: fired.workflow,
                    input: fired.input,
                    requester: fired.requester,
                    channel: "schedule".to_owned(),
                    source: None,
                    roles: std::collections::BTreeMap::new(),
                    refused: None,
                }))
            }
            other => Err(format!(
                "unexpected event type {other} in a schedule stream"
            )),
        }
    }
}

/// The key of a trigger: its place and its expression, so an edited schedule is armed anew.
fn trigger_key(index: usize, schedule: &Schedule) -> String {
    format!(
        "{index}|{}|{}",
        schedule.expression(),
        schedule.timezone().name()
    )
}

fn to_utc(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.0)
}

fn from_utc(t: DateTime<Utc>) -> Timestamp {
    Timestamp(t.timestamp_micros())
}

/// One cron trigger of a loaded workflow.
struct Due {
    workflow: String,
    key: String,
    schedule: Schedule,
    requester: String,
}

impl Runtime {
    fn cron_triggers(&self) -> Vec<Due> {
        let mut out = Vec::new();
        for loaded in self.definitions() {
            let workflow = &loaded.definition.id.value;
            for (index, trigger) in loaded.definition.triggers.iter().enumerate() {
                let Some(cron) = &trigger.cron else { continue };
                let zone = trigger.timezone.as_ref().map(|z| z.value.as_str());
                match Schedule::parse(&cron.value, zone) {
                    Ok(schedule) => out.push(Due {
                        workflow: workflow.clone(),
                        key: trigger_key(index, &schedule),
                        schedule,
                        requester: trigger
                            .requester
                            .as_ref()
                            .map_or_else(|| SYSTEM.to_owned(), |r| r.value.clone()),
                    }),
                    Err(reason) => {
                        tracing::warn!(%workflow, %reason, "a cron trigger cannot be read; skipped");
                    }
                }
            }
        }
        out
    }

    /// Starts every scheduled workflow whose cron trigger came due, once per run, and arms
    /// triggers seen for the first time. Returns how many runs were recorded.
    ///
    /// A run is recorded in the workflow's `schedule/` stream before its instance starts, with
    /// an instance id derived from the run, so two processes, or a restart in between, start
    /// it once. After a stop spanning several runs, the latest one is started.
    ///
    /// # Errors
    /// A store error.
    pub async fn fire_due_schedules(&self) -> Result<usize, RuntimeError> {
        self.catch_up().await?;
        let now = self.now();
        let Some(now_utc) = to_utc(now) else {
            return Ok(0);
        };
        let mut fired = 0;
        // Versions of the schedule streams this call appended to: a workflow's second trigger
        // must not conflict with what its first one just recorded.
        let mut written: HashMap<String, u64> = HashMap::new();
        for due in self.cron_triggers() {
            let (version, last) = {
                let view = self.view();
                view.schedules.get(&due.workflow).map_or((0, None), |runs| {
                    (runs.version, runs.last.get(&due.key).copied())
                })
            };
            let version = written.get(&due.workflow).copied().unwrap_or(version);
            let (ty, data) = match last {
                None => (
                    SCHEDULE_ARMED,
                    serde_json::to_value(Armed {
                        workflow: due.workflow.clone(),
                        trigger: due.key.clone(),
                        at: now,
                    }),
                ),
                Some(last) => {
                    let Some(run) = latest_due(&due.schedule, last, now_utc) else {
                        continue;
                    };
                    let scheduled = from_utc(run);
                    let instance = derived_instance_id(&format!(
                        "schedule:{}:{}:{}",
                        due.workflow, due.key, scheduled.0
                    ));
                    let input = json!({"schedule": {
                        "cron": due.schedule.expression(),
                        "timezone": due.schedule.timezone().name(),
                        "at": scheduled.to_rfc3339(),
                    }});
                    fired += 1;
                    (
                        SCHEDULE_FIRED,
                        serde_json::to_value(Fired {
                            workflow: due.workflow.clone(),
                            trigger: due.key.clone(),
                            scheduled,
                            instance,
                            requester: due.requester.clone(),
                            input,
                        }),
                    )
                }
            };
            let data = data.map_err(|e| corrupt(&e))?;
            let event = new_event(ty, &data, SYSTEM, "schedule", None)?;
            let stream = StreamId::parse(format!("{STREAM_PREFIX}{}", due.workflow))
                .map_err(|e| corrupt(&e))?;
            match self
                .log()
                .append(AppendRequest::new(
                    stream,
                    ExpectedVersion::Exact(version),
                    vec![event],
                ))
                .await
            {
                Ok(appended) => {
                    written.insert(due.workflow.clone(), appended.stream_version);
                }
                // Another process recorded it first; the next round sees what it did.
                Err(StoreError::Conflict { .. }) => {
                    fired -= usize::from(ty == SCHEDULE_FIRED);
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.catch_up().await?;
        Ok(fired)
    }

    /// When the next cron run is due, if any trigger is armed.
    #[must_use]
    pub fn next_schedule(&self) -> Option<Timestamp> {
        let triggers = self.cron_triggers();
        let view = self.view();
        triggers
            .iter()
            .filter_map(|due| {
                let last = view.schedules.get(&due.workflow)?.last.get(&due.key)?;
                due.schedule.next_after(to_utc(*last)?).map(from_utc)
            })
            .min()
    }
}

/// The latest run of `schedule` after `last` and not after `now`.
fn latest_due(schedule: &Schedule, last: Timestamp, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let last = to_utc(last)?;
    let first = schedule.next_after(last)?;
    if first > now {
        return None;
    }
    // Look back from now in growing windows, so that after a long stop a minutely schedule
    // is not stepped through a run at a time: the first window holding a run holds few.
    let mut run = first;
    for window in [
        chrono::Duration::hours(1),
        chrono::Duration::days(1),
        chrono::Duration::days(31),
        chrono::Duration::days(366),
    ] {
        let from = (now - window).max(last);
        if let Some(found) = schedule.next_after(from).filter(|r| *r <= now) {
            run = found;
            break;
        }
    }
    for _ in 0..MAX_STEPS {
        match schedule.next_after(run) {
            Some(next) if next <= now => run = next,
            _ => break,
        }
    }
    Some(run)
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, NaiveDate, TimeZone, Weekday};

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn schedule(expr: &str, zone: Option<&str>) -> Schedule {
        Schedule::parse(expr, zone).expect("valid schedule")
    }

    /// Every occurrence from `start` (exclusive) up to `end` (exclusive).
    fn runs(s: &Schedule, start: &str, end: &str) -> Vec<DateTime<Utc>> {
        let end = utc(end);
        let mut out = Vec::new();
        let mut at = utc(start);
        while let Some(next) = s.next_after(at) {
            if next >= end {
                break;
            }
            out.push(next);
            at = next;
        }
        out
    }

    fn runs_on_local_day(s: &Schedule, day: NaiveDate) -> Vec<DateTime<Utc>> {
        runs(s, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
            .into_iter()
            .filter(|t| t.with_timezone(&s.timezone()).date_naive() == day)
            .collect()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn a_daily_job_in_the_skipped_hour_runs_once_just_after_the_gap() {
        let s = schedule("30 2 * * *", Some("Europe/Berlin"));
        // 2026-03-29: Berlin's clocks jump from 02:00 CET to 03:00 CEST; 02:30 never happens.
        // croner runs a fixed-time job at the first minute after the gap: 03:00 CEST = 01:00 UTC.
        assert_eq!(
            runs_on_local_day(&s, day(2026, 3, 29)),
            [utc("2026-03-29T01:00:00Z")]
        );
        assert_eq!(
            runs_on_local_day(&s, day(2026, 3, 28)),
            [utc("2026-03-28T01:30:00Z")]
        );
        assert_eq!(
            runs_on_local_day(&s, day(2026, 3, 30)),
            [utc("2026-03-30T00:30:00Z")]
        );
    }

    #[test]
    fn a_daily_job_in_the_repeated_hour_runs_once_the_first_time() {
        let s = schedule("30 2 * * *", Some("Europe/Berlin"));
        // 2026-10-25: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
        assert_eq!(
            runs_on_local_day(&s, day(2026, 10, 25)),
            [utc("2026-10-25T00:30:00Z")]
        );
        // Asking from between the two 02:30s does not run it a second time.
        assert_eq!(
            s.next_after(utc("2026-10-25T01:00:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
        assert_eq!(
            runs_on_local_day(&s, day(2026, 10, 26)),
            [utc("2026-10-26T01:30:00Z")]
        );
    }

    #[test]
    fn a_job_runs_every_day_of_a_year_exactly_once() {
        let s = schedule("30 2 * * *", Some("Europe/Berlin"));
        let all = runs(&s, "2025-12-31T12:00:00Z", "2026-12-31T12:00:00Z");
        assert_eq!(all.len(), 365);
    }

    #[test]
    fn weekdays_count_as_in_crontab() {
        let monday = schedule("0 9 * * 1", None);
        let sunday = schedule("0 9 * * 0", None);
        let sunday_too = schedule("0 9 * * 7", None);
        let start = "2026-03-01T00:00:00Z";
        let end = "2026-05-01T00:00:00Z";
        let mondays = runs(&monday, start, end);
        assert_eq!(mondays.len(), 9);
        assert!(mondays.iter().all(|t| t.weekday() == Weekday::Mon));
        assert_eq!(mondays[0], utc("2026-03-02T09:00:00Z"));
        let sundays = runs(&sunday, start, end);
        assert_eq!(sundays.len(), 9);
        assert!(sundays.iter().all(|t| t.weekday() == Weekday::Sun));
        assert_eq!(sundays[0], utc("2026-03-01T09:00:00Z"));
        assert_eq!(runs(&sunday_too, start, end), sundays);
        let weekdays = runs(&schedule("0 9 * * MON-FRI", None), start, end);
        assert_eq!(weekdays.len(), 44);
    }

    #[test]
    fn a_yearly_job_runs_on_new_year() {
        let s = schedule("0 9 1 1 *", Some("Europe/Berlin"));
        assert_eq!(
            s.next_after(utc("2026-03-01T00:00:00Z")),
            Some(utc("2027-01-01T08:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2027-01-01T08:00:00Z")),
            Some(utc("2028-01-01T08:00:00Z"))
        );
    }

    #[test]
    fn the_next_run_is_strictly_after() {
        let s = schedule("0 9 * * *", None);
        assert_eq!(
            s.next_after(utc("2026-03-01T08:59:59.999Z")),
            Some(utc("2026-03-01T09:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-03-01T09:00:00Z")),
            Some(utc("2026-03-02T09:00:00Z"))
        );
        assert_eq!(
            s.next_after(utc("2026-03-01T09:00:00.250Z")),
            Some(utc("2026-03-02T09:00:00Z"))
        );
        let every_minute = schedule("* * * * *", None);
        assert_eq!(
            every_minute.next_after(utc("2026-03-01T09:00:30Z")),
            Some(utc("2026-03-01T09:01:00Z"))
        );
    }

    #[test]
    fn day_of_month_and_day_of_week_match_either_as_in_crontab() {
        // The 13th of any month, or any Friday.
        let s = schedule("0 0 13 * 5", None);
        let all = runs(&s, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z");
        let days: Vec<u32> = all.iter().map(Datelike::day).collect();
        assert_eq!(days, [6, 13, 20, 27]);
        let s = schedule("0 0 1 * 1", None);
        let all = runs(&s, "2026-02-28T12:00:00Z", "2026-04-01T00:00:00Z");
        let days: Vec<u32> = all.iter().map(Datelike::day).collect();
        assert_eq!(days, [1, 2, 9, 16, 23, 30]);
    }

    #[test]
    fn wrong_field_counts_are_refused() {
        let six = Schedule::parse("* * * * * *", None).expect_err("6 fields");
        assert!(
            six.contains("has 6 field(s); a crontab schedule has 5"),
            "{six}"
        );
        assert!(six.contains("seconds"), "{six}");
        let seven = Schedule::parse("0 0 0 * * * 2026", None).expect_err("7 fields");
        assert!(seven.contains("has 7 field(s)"), "{seven}");
        let four = Schedule::parse("0 9 * *", None).expect_err("4 fields");
        assert!(
            four.contains("minute hour day-of-month month day-of-week"),
            "{four}"
        );
        let nickname = Schedule::parse("@daily", None).expect_err("nickname");
        assert!(nickname.contains("nickname"), "{nickname}");
    }

    #[test]
    fn invalid_fields_are_named() {
        let minute = Schedule::parse("61 * * * *", None).expect_err("61");
        assert!(minute.starts_with("the minute field \"61\""), "{minute}");
        let hour = Schedule::parse("0 24 * * *", None).expect_err("24");
        assert!(hour.starts_with("the hour field \"24\""), "{hour}");
        let dow = Schedule::parse("0 9 * * 8", None).expect_err("8");
        assert!(dow.starts_with("the day-of-week field \"8\""), "{dow}");
        let month = Schedule::parse("0 9 * 13 *", None).expect_err("13");
        assert!(month.starts_with("the month field \"13\""), "{month}");
        let junk = Schedule::parse("0 9 x * *", None).expect_err("x");
        assert!(junk.starts_with("the day-of-month field \"x\""), "{junk}");
    }

    #[test]
    fn unknown_time_zones_are_refused() {
        let error = Schedule::parse("0 9 * * *", Some("Europe/Berln")).expect_err("zone");
        assert!(
            error.starts_with("unknown time zone \"Europe/Berln\""),
            "{error}"
        );
        let s = schedule("0 9 * * *", Some("America/New_York"));
        assert_eq!(s.to_string(), "0 9 * * * (America/New_York)");
        let local = Tz::America__New_York
            .with_ymd_and_hms(2026, 7, 1, 9, 0, 0)
            .single()
            .expect("time");
        assert_eq!(
            s.next_after(utc("2026-07-01T00:00:00Z")),
            Some(local.with_timezone(&Utc))
        );
    }

    #[test]
    fn a_date_that_never_comes_has_no_next_run() {
        let s = schedule("0 0 30 2 *", None);
        assert_eq!(s.next_after(utc("2026-01-01T00:00:00Z")), None);
    }

    #[test]
    fn after_a_long_stop_the_latest_missed_run_is_the_one_started() {
        let now = utc("2026-11-23T09:00:30Z");
        let every_minute = schedule("* * * * *", None);
        let last = from_utc(utc("2026-05-01T00:00:00Z"));
        assert_eq!(
            latest_due(&every_minute, last, now),
            Some(utc("2026-11-23T09:00:00Z"))
        );
        // A yearly run missed over two years: the latest one.
        let yearly = schedule("0 9 1 3 *", Some("Europe/Paris"));
        let last = from_utc(utc("2024-03-02T00:00:00Z"));
        assert_eq!(
            latest_due(&yearly, last, now),
            Some(utc("2026-03-01T08:00:00Z"))
        );
        // Nothing due yet.
        let last = from_utc(utc("2026-11-23T09:00:00Z"));
        assert_eq!(latest_due(&every_minute, last, now), None);
    }
}
