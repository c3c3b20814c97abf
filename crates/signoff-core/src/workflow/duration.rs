//! Durations as definitions write them: `90s`, `30m`, `4h`, `3d`, `2w`, and business days `5bd`
//! (Monday to Friday, counted in UTC), which post-mortem due dates use.

use std::borrow::Cow;
use std::fmt;

use chrono::{Datelike, Weekday};
use schemars::{JsonSchema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::event::Timestamp;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A span of time in a definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Span {
    /// A fixed number of seconds.
    Seconds(i64),
    /// A number of business days: weekends are skipped.
    BusinessDays(u32),
}

/// How a duration is written: the hint to every duration refused.
pub const FORMS: &str =
    "write a whole number and a unit: 90s, 30m, 4h, 3d, 2w, or 5bd (business days)";

/// What every refusal of [`Span::parse`] starts with, so a reader of the message (the definition
/// parser) can tell it apart and split off its hint.
const REFUSAL: &str = "the duration ";

impl Span {
    /// Parses `<number><unit>` with unit `s`, `m`, `h`, `d`, `w` or `bd`.
    ///
    /// # Errors
    /// A sentence saying what is wrong, then `; ` and what to write instead (see [`explain`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let refuse = |what: &str, hint: &str| format!("{REFUSAL}{text:?} {what}; {hint}");
        let Ok(n) = number.parse::<i64>() else {
            let what = if number.is_empty() {
                "does not start with a number"
            } else {
                "is too long"
            };
            return Err(refuse(what, FORMS));
        };
        if n <= 0 {
            return Err(refuse("is not longer than zero", FORMS));
        }
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => SECONDS_PER_DAY,
            "w" => 7 * SECONDS_PER_DAY,
            "bd" => {
                return u32::try_from(n)
                    .ok()
                    .filter(|&d| d <= 3_650)
                    .map(Self::BusinessDays)
                    .ok_or_else(|| refuse("is too long", "a duration is at most 3650bd"));
            }
            "" => return Err(refuse("has no unit", FORMS)),
            _ => {
                let hint = match unit_for(unit) {
                    Some(known) => format!("did you mean `{n}{known}`? {FORMS}"),
                    None => FORMS.to_owned(),
                };
                return Err(refuse("has no known unit", &hint));
            }
        };
        n.checked_mul(seconds)
            .filter(|&s| s <= 100 * 366 * SECONDS_PER_DAY)
            .map(Self::Seconds)
            .ok_or_else(|| refuse("is too long", "a duration is at most 100 years"))
    }

    /// The moment this span after `from` ends. Business days skip Saturdays and Sundays (UTC) and
    /// keep the time of day.
    #[must_use]
    pub fn after(self, from: Timestamp) -> Timestamp {
        match self {
            Self::Seconds(s) => Timestamp(from.0.saturating_add(s * MICROS_PER_SECOND)),
            Self::BusinessDays(days) => {
                let Some(mut t) = chrono::DateTime::from_timestamp_micros(from.0) else {
                    return from;
                };
                let mut left = days;
                while left > 0 {
                    t += chrono::Duration::days(1);
                    if !matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
                        left -= 1;
                    }
                }
                Timestamp(t.timestamp_micros())
            }
        }
    }

    /// The moment this span before `at` starts (business days count back over weekends).
    #[must_use]
    pub fn before(self, at: Timestamp) -> Timestamp {
        match self {
            Self::Seconds(s) => Timestamp(at.0.saturating_sub(s * MICROS_PER_SECOND)),
            Self::BusinessDays(days) => {
                let Some(mut t) = chrono::DateTime::from_timestamp_micros(at.0) else {
                    return at;
                };
                let mut left = days;
                while left > 0 {
                    t -= chrono::Duration::days(1);
                    if !matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
                        left -= 1;
                    }
                }
                Timestamp(t.timestamp_micros())
            }
        }
    }
}

/// The unit a person most likely meant by a word (`days`, `hours`, `business days`).
fn unit_for(word: &str) -> Option<&'static str> {
    let word = word.trim().to_ascii_lowercase();
    let unit = match word.as_str() {
        "sec" | "secs" | "second" | "seconds" => "s",
        "min" | "mins" | "minute" | "minutes" => "m",
        "hr" | "hrs" | "hour" | "hours" => "h",
        "day" | "days" => "d",
        "wk" | "wks" | "week" | "weeks" => "w",
        "business day" | "business days" | "working day" | "working days" => "bd",
        _ => return None,
    };
    Some(unit)
}

/// Splits a refusal of [`Span::parse`] into what is wrong and what to write instead; `None` for
/// any other message.
#[must_use]
pub fn explain(message: &str) -> Option<(&str, &str)> {
    if !message.starts_with(REFUSAL) {
        return None;
    }
    message.split_once("; ")
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BusinessDays(d) => write!(f, "{d}bd"),
            Self::Seconds(s) if s % (7 * SECONDS_PER_DAY) == 0 => {
                write!(f, "{}w", s / (7 * SECONDS_PER_DAY))
            }
            Self::Seconds(s) if s % SECONDS_PER_DAY == 0 => write!(f, "{}d", s / SECONDS_PER_DAY),
            Self::Seconds(s) if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            Self::Seconds(s) if s % 60 == 0 => write!(f, "{}m", s / 60),
            Self::Seconds(s) => write!(f, "{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[1-9][0-9]*(s|m|h|d|w|bd)$",
            "description": "A duration: 90s, 30m, 4h, 3d, 2w, or 5bd (business days, weekends skipped)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap_or(Timestamp(0))
    }

    #[test]
    fn units_parse_and_print_back() {
        for (text, span) in [
            ("90s", Span::Seconds(90)),
            ("30m", Span::Seconds(1_800)),
            ("4h", Span::Seconds(14_400)),
            ("3d", Span::Seconds(3 * 86_400)),
            ("2w", Span::Seconds(14 * 86_400)),
            ("5bd", Span::BusinessDays(5)),
        ] {
            assert_eq!(Span::parse(text), Ok(span));
            assert_eq!(span.to_string(), text);
        }
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        for bad in ["", "m", "0h", "-3d", "3 days", "3y", "99999999999999w"] {
            let err = Span::parse(bad).err().unwrap_or_default();
            assert!(!err.is_empty(), "{bad:?} was accepted");
        }
        assert!(
            Span::parse("3y")
                .err()
                .unwrap_or_default()
                .contains("30m, 4h")
        );
    }

    #[test]
    fn a_refusal_splits_into_what_is_wrong_and_what_to_write() {
        let refusal = Span::parse("3 days").err().unwrap_or_default();
        assert_eq!(
            explain(&refusal),
            Some((
                r#"the duration "3 days" has no known unit"#,
                "did you mean `3d`? write a whole number and a unit: 90s, 30m, 4h, 3d, 2w, or 5bd (business days)"
            ))
        );
        let refusal = Span::parse("10").err().unwrap_or_default();
        assert_eq!(
            explain(&refusal).map(|(what, _)| what),
            Some(r#"the duration "10" has no unit"#)
        );
        assert_eq!(explain("missing field `after`"), None);
    }

    #[test]
    fn business_days_skip_weekends() {
        // Friday 2026-11-20 10:00 + 1bd = Monday 23rd; + 5bd = Friday 27th.
        let friday = at("2026-11-20T10:00:00Z");
        assert_eq!(
            Span::BusinessDays(1).after(friday),
            at("2026-11-23T10:00:00Z")
        );
        assert_eq!(
            Span::BusinessDays(5).after(friday),
            at("2026-11-27T10:00:00Z")
        );
        // Saturday + 1bd = Monday.
        assert_eq!(
            Span::BusinessDays(1).after(at("2026-11-21T09:00:00Z")),
            at("2026-11-23T09:00:00Z")
        );
        assert_eq!(
            Span::BusinessDays(1).before(at("2026-11-23T10:00:00Z")),
            friday
        );
    }
}
