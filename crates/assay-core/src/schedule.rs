//! Schedules: when an operation runs by itself. A cadence is a 5-field cron expression in UTC (minute, hour, day
//! of month, month, day of week; parsed and stepped by the `croner` crate, with the presets hourly, daily, weekly
//! and monthly) or a fixed interval. The scheduler asks two questions of a cadence: which instant is due now
//! (the latest one at or before now and after the schedule's anchor, so a server that was down runs the
//! latest missed instant once, not a burst) and which instants come next (shown to users before they save).

use crate::FieldError;
use chrono::{DateTime, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

/// The presets and the cron expressions they stand for.
pub const PRESETS: [(&str, &str); 4] = [
    ("hourly", "0 * * * *"),
    ("daily", "0 0 * * *"),
    ("weekly", "0 0 * * 0"),
    ("monthly", "0 0 1 * *"),
];

/// The shortest interval a schedule may have, unless the host allows shorter ones (tests do).
pub const MIN_INTERVAL_SECONDS: i64 = 60;

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cadence {
    /// A 5-field cron expression, in UTC.
    Cron(String),
    /// Every so many seconds, counted from the schedule's anchor.
    Interval(i64),
}

impl Cadence {
    /// Reads a cadence from the three ways a request may give it (`cron`, `preset`, `interval_seconds`), with
    /// every problem named by its field. `min_interval` is the shortest interval allowed.
    pub fn from_request(
        cron: Option<&str>,
        preset: Option<&str>,
        interval_seconds: Option<i64>,
        min_interval: i64,
    ) -> Result<Cadence, Vec<FieldError>> {
        let given = [cron.is_some(), preset.is_some(), interval_seconds.is_some()]
            .iter()
            .filter(|g| **g)
            .count();
        if given != 1 {
            return Err(vec![FieldError::new(
                "cron",
                "give exactly one of cron (5 fields, UTC), preset (hourly, daily, weekly, monthly) or interval_seconds",
            )]);
        }
        if let Some(p) = preset {
            return match PRESETS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(p))
            {
                Some((_, expr)) => Ok(Cadence::Cron(expr.to_string())),
                None => Err(vec![FieldError::new(
                    "preset",
                    format!("'{p}' is not one of hourly, daily, weekly, monthly"),
                )]),
            };
        }
        if let Some(n) = interval_seconds {
            if n < min_interval {
                return Err(vec![FieldError::new(
                    "interval_seconds",
                    format!("must be at least {min_interval} seconds"),
                )]);
            }
            if n > 366 * 86_400 {
                return Err(vec![FieldError::new(
                    "interval_seconds",
                    "must be at most a year (31622400 seconds); use a cron expression for rarer runs",
                )]);
            }
            return Ok(Cadence::Interval(n));
        }
        let expr = cron.unwrap_or_default().trim();
        parse_cron(expr).map_err(|m| vec![FieldError::new("cron", m)])?;
        Ok(Cadence::Cron(expr.to_string()))
    }

    /// The latest instant at or before `now` and after `anchor` (the schedule's creation or last change):
    /// the one instant a scheduler fires now. `None` when none is due yet.
    pub fn due(&self, anchor: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = match self {
            Cadence::Cron(expr) => parse_cron(expr)
                .ok()?
                .find_previous_occurrence(&now, true)
                .ok()?,
            Cadence::Interval(secs) => {
                let step = (*secs).max(1);
                let passed = (now - anchor).num_seconds();
                if passed < step {
                    return None;
                }
                anchor + TimeDelta::seconds(passed / step * step)
            }
        };
        (at > anchor && at <= now).then_some(at)
    }

    /// The next `n` instants after `after` (for a schedule anchored at `anchor`).
    pub fn upcoming(
        &self,
        anchor: DateTime<Utc>,
        after: DateTime<Utc>,
        n: usize,
    ) -> Vec<DateTime<Utc>> {
        match self {
            Cadence::Cron(expr) => match parse_cron(expr) {
                Ok(c) => c.iter_after(after).take(n).collect(),
                Err(_) => vec![],
            },
            Cadence::Interval(secs) => {
                let step = (*secs).max(1);
                let passed = (after - anchor).num_seconds().max(-1);
                let first = passed.div_euclid(step) + 1;
                (0..n as i64)
                    .map(|k| anchor + TimeDelta::seconds((first + k) * step))
                    .collect()
            }
        }
    }

    /// The cron expression, or `None` for an interval.
    pub fn cron(&self) -> Option<&str> {
        match self {
            Cadence::Cron(e) => Some(e),
            Cadence::Interval(_) => None,
        }
    }

    /// The interval in seconds, or `None` for a cron expression.
    pub fn interval_seconds(&self) -> Option<i64> {
        match self {
            Cadence::Interval(n) => Some(*n),
            Cadence::Cron(_) => None,
        }
    }
}

/// A 5-field cron expression (no seconds, no year), or why it is not one.
fn parse_cron(expr: &str) -> Result<Cron, String> {
    if expr.split_whitespace().count() != 5 {
        return Err(format!(
            "'{expr}' is not a 5-field cron expression (minute hour day-of-month month day-of-week, in UTC), \
             such as '0 2 * * *' for 02:00 every day"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("'{expr}' is not a valid cron expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, h, m, s).unwrap()
    }

    #[test]
    fn cron_due_is_the_latest_instant_since_the_anchor() {
        let c = Cadence::Cron("*/15 * * * *".into());
        // created at 10:02: nothing due before 10:15
        assert_eq!(c.due(at(10, 2, 0), at(10, 14, 59)), None);
        assert_eq!(c.due(at(10, 2, 0), at(10, 15, 0)), Some(at(10, 15, 0)));
        // down from 10:20 to 11:10: only the latest missed instant, once
        assert_eq!(c.due(at(10, 2, 0), at(11, 10, 0)), Some(at(11, 0, 0)));
        assert_eq!(
            c.upcoming(at(10, 2, 0), at(10, 15, 0), 3),
            [at(10, 30, 0), at(10, 45, 0), at(11, 0, 0)]
        );
    }

    #[test]
    fn interval_instants_count_from_the_anchor() {
        let c = Cadence::Interval(60);
        assert_eq!(c.due(at(10, 0, 30), at(10, 1, 29)), None);
        assert_eq!(c.due(at(10, 0, 30), at(10, 1, 30)), Some(at(10, 1, 30)));
        assert_eq!(c.due(at(10, 0, 30), at(10, 5, 0)), Some(at(10, 4, 30)));
        assert_eq!(
            c.upcoming(at(10, 0, 30), at(10, 1, 30), 2),
            [at(10, 2, 30), at(10, 3, 30)]
        );
    }

    #[test]
    fn requests_name_the_field_that_is_wrong() {
        let field = |r: Result<Cadence, Vec<FieldError>>| r.unwrap_err()[0].field.clone();
        assert_eq!(
            Cadence::from_request(Some("0 2 * * *"), None, None, 60),
            Ok(Cadence::Cron("0 2 * * *".into()))
        );
        assert_eq!(
            Cadence::from_request(None, Some("Weekly"), None, 60),
            Ok(Cadence::Cron("0 0 * * 0".into()))
        );
        assert_eq!(
            field(Cadence::from_request(Some("61 * * * *"), None, None, 60)),
            "cron"
        );
        assert_eq!(
            field(Cadence::from_request(Some("* * * *"), None, None, 60)),
            "cron"
        );
        assert_eq!(
            field(Cadence::from_request(Some("0 0 * * * *"), None, None, 60)),
            "cron"
        );
        assert_eq!(
            field(Cadence::from_request(None, Some("yearly"), None, 60)),
            "preset"
        );
        assert_eq!(
            field(Cadence::from_request(None, None, Some(5), 60)),
            "interval_seconds"
        );
        assert_eq!(field(Cadence::from_request(None, None, None, 60)), "cron");
        assert_eq!(
            Cadence::from_request(None, None, Some(5), 1),
            Ok(Cadence::Interval(5))
        );
    }
}
