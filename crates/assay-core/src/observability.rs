//! Volume and freshness judgement over a container's measurement series (no I/O).
//!
//! **Volume.** A table's measurements are reduced to one row count per UTC day (the day's last measurement), and
//! a day's *load* is its change from the day before. The band for a load is robust: the median of the loads in
//! the window (the previous [`WINDOW_DAYS`] days) plus or minus [`BAND_MADS`] scaled median absolute deviations,
//! never narrower than a tenth of the median (so a table with perfectly regular loads does not alarm on a
//! one-row difference). When the window holds at least three weeks and the loads differ by weekday (the
//! weekday medians spread more than the band), the same weekday's loads form the band instead (weekends that
//! load nothing are normal). No verdict before [`MIN_DAYS`] days of history. A missing, half or doubled load
//! falls outside the band; growth at the usual pace does not.
//!
//! **Freshness.** The intervals between modifications (measurements whose modification counter moved) give the
//! usual gap; the longest one seen, times [`FRESHNESS_SLACK`], is the maximum age. A table whose last
//! modification is older than that is stale. No verdict before [`MIN_CHANGES`] modifications have been seen.
//!
//! The median absolute deviation is scaled by 1.4826 so that it estimates a normal spread's standard deviation;
//! with [`BAND_MADS`] = 4 a normal day falls outside with a probability of about 6e-5.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::collections::BTreeMap;

/// Days of history a band is computed from.
pub const WINDOW_DAYS: i64 = 28;
/// Days of history before volume is judged.
pub const MIN_DAYS: usize = 7;
/// Width of the volume band in scaled median absolute deviations.
pub const BAND_MADS: f64 = 4.0;
/// Modifications seen before freshness is judged.
pub const MIN_CHANGES: usize = 3;
/// The maximum age is the longest usual gap times this.
pub const FRESHNESS_SLACK: f64 = 1.5;

/// One measurement of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub at: DateTime<Utc>,
    pub row_count: Option<i64>,
    /// When the container was last seen to change (carried over while nothing changes).
    pub last_modified: Option<DateTime<Utc>>,
}

/// The expected range of a day's load, and what it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub low: f64,
    pub high: f64,
    /// `all days` or the weekday the band is for (`Mondays`, ...).
    pub basis: String,
    pub days: usize,
}

/// A verdict on the latest day or instant.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not enough history yet.
    Learning {
        have: usize,
        need: usize,
    },
    Normal,
    /// Outside what the history says, with the words for the anomaly.
    Anomalous(String),
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn band_of(loads: &[f64], basis: String) -> Band {
    let mut v = loads.to_vec();
    let m = median(&mut v);
    let mut dev: Vec<f64> = loads.iter().map(|x| (x - m).abs()).collect();
    let mad = 1.4826 * median(&mut dev);
    let half = (BAND_MADS * mad).max(0.1 * m.abs()).max(1.0);
    Band {
        low: m - half,
        high: m + half,
        basis,
        days: loads.len(),
    }
}

/// The last row count of each UTC day.
pub fn daily_counts(series: &[Measurement]) -> BTreeMap<NaiveDate, i64> {
    let mut days = BTreeMap::new();
    let mut sorted: Vec<&Measurement> = series.iter().collect();
    sorted.sort_by_key(|m| m.at);
    for m in sorted {
        if let Some(n) = m.row_count {
            days.insert(m.at.date_naive(), n);
        }
    }
    days
}

/// Each day's load (its count minus the previous day's), for consecutive days only.
pub fn daily_loads(series: &[Measurement]) -> Vec<(NaiveDate, f64)> {
    let days = daily_counts(series);
    let v: Vec<(&NaiveDate, &i64)> = days.iter().collect();
    v.windows(2)
        .filter(|w| (*w[1].0 - *w[0].0).num_days() == 1)
        .map(|w| (*w[1].0, (*w[1].1 - *w[0].1) as f64))
        .collect()
}

/// The band for the load of `day` from the loads before it.
pub fn volume_band(loads: &[(NaiveDate, f64)], day: NaiveDate) -> Option<Band> {
    let window: Vec<(NaiveDate, f64)> = loads
        .iter()
        .filter(|(d, _)| *d < day && (day - *d).num_days() <= WINDOW_DAYS)
        .copied()
        .collect();
    if window.len() < MIN_DAYS {
        return None;
    }
    let all: Vec<f64> = window.iter().map(|x| x.1).collect();
    let overall = band_of(&all, "all days".into());
    if window.len() >= 21 {
        let mut by_weekday: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        for (d, x) in &window {
            by_weekday
                .entry(d.weekday().num_days_from_monday())
                .or_default()
                .push(*x);
        }
        let mut medians: Vec<f64> = by_weekday
            .values()
            .map(|xs| median(&mut xs.clone()))
            .collect();
        let spread = medians.iter().cloned().fold(f64::MIN, f64::max)
            - medians.iter_mut().map(|x| *x).fold(f64::MAX, f64::min);
        let same = by_weekday.get(&day.weekday().num_days_from_monday());
        if spread > overall.high - overall.low
            && let Some(same) = same.filter(|s| s.len() >= 3)
        {
            const NAMES: [&str; 7] = [
                "Mondays",
                "Tuesdays",
                "Wednesdays",
                "Thursdays",
                "Fridays",
                "Saturdays",
                "Sundays",
            ];
            let name = NAMES[day.weekday().num_days_from_monday() as usize];
            return Some(band_of(same, name.to_string()));
        }
    }
    Some(overall)
}

/// Whether the load of the latest complete day (the last before `today`, whose count may still grow) is within
/// its band.
pub fn judge_volume(series: &[Measurement], today: NaiveDate) -> (Verdict, Option<Band>) {
    let loads: Vec<(NaiveDate, f64)> = daily_loads(series)
        .into_iter()
        .filter(|(d, _)| *d < today)
        .collect();
    let Some(&(day, load)) = loads.last() else {
        return (
            Verdict::Learning {
                have: 0,
                need: MIN_DAYS,
            },
            None,
        );
    };
    let Some(band) = volume_band(&loads, day) else {
        let have = loads.len().saturating_sub(1);
        return (
            Verdict::Learning {
                have,
                need: MIN_DAYS,
            },
            None,
        );
    };
    let verdict = if load < band.low || load > band.high {
        Verdict::Anomalous(format!(
            "{day} added {load} rows; the {} days before ({}) added between {:.0} and {:.0}",
            band.days, band.basis, band.low, band.high
        ))
    } else {
        Verdict::Normal
    };
    (verdict, Some(band))
}

/// The instants at which the container was seen to change, oldest first.
fn changes(series: &[Measurement]) -> Vec<DateTime<Utc>> {
    let mut out: Vec<DateTime<Utc>> = series.iter().filter_map(|m| m.last_modified).collect();
    out.sort();
    out.dedup();
    out
}

/// The longest age the container's history allows, once it has changed often enough to tell.
pub fn freshness_max_age(series: &[Measurement]) -> Option<chrono::TimeDelta> {
    let c = changes(series);
    if c.len() < MIN_CHANGES {
        return None;
    }
    let longest = c.windows(2).map(|w| w[1] - w[0]).max()?;
    let ms = (longest.num_milliseconds() as f64 * FRESHNESS_SLACK) as i64;
    Some(chrono::TimeDelta::milliseconds(ms.max(1)))
}

/// Whether the container changed recently enough at `now`.
pub fn judge_freshness(
    series: &[Measurement],
    now: DateTime<Utc>,
) -> (Verdict, Option<chrono::TimeDelta>) {
    let c = changes(series);
    let Some(max_age) = freshness_max_age(series) else {
        return (
            Verdict::Learning {
                have: c.len(),
                need: MIN_CHANGES,
            },
            None,
        );
    };
    let last = *c.last().expect("changes were counted");
    let age = now - last;
    let verdict = if age > max_age {
        Verdict::Anomalous(format!(
            "no change since {last} ({} h ago); it has changed at least every {:.1} h before",
            age.num_hours(),
            max_age.num_minutes() as f64 / 60.0 / FRESHNESS_SLACK
        ))
    } else {
        Verdict::Normal
    };
    (verdict, Some(max_age))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The verdict on a series the day after its last day.
    fn judge_volume(s: &[Measurement]) -> (Verdict, Option<Band>) {
        let today = s.last().unwrap().at.date_naive() + chrono::TimeDelta::days(1);
        super::judge_volume(s, today)
    }

    fn at(day: i64, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, hour, 0, 0).unwrap() + chrono::TimeDelta::days(day)
    }

    /// One measurement a day after each day's load; `load(day)` rows arrive on `day`.
    fn series(days: i64, load: impl Fn(i64) -> i64) -> Vec<Measurement> {
        let mut n = 10_000;
        let mut last = at(0, 1);
        (0..days)
            .map(|d| {
                let l = load(d);
                n += l;
                if l != 0 {
                    last = at(d, 2);
                }
                Measurement {
                    at: at(d, 3),
                    row_count: Some(n),
                    last_modified: Some(last),
                }
            })
            .collect()
    }

    /// A steady load of about 1000 a day with a deterministic wobble of ±5 %.
    fn steady(d: i64) -> i64 {
        1000 + (d * 37 % 11 - 5) * 10
    }

    #[test]
    fn steady_growth_is_normal_and_the_history_must_be_long_enough() {
        let s = series(40, steady);
        assert_eq!(judge_volume(&s).0, Verdict::Normal);
        let short = series(5, steady);
        assert!(matches!(judge_volume(&short).0, Verdict::Learning { .. }));
        // every day of a long steady history is normal, none is flagged
        for end in 10..40 {
            assert_eq!(judge_volume(&s[..end]).0, Verdict::Normal, "day {end}");
        }
    }

    #[test]
    fn the_current_day_is_not_judged_until_it_is_over() {
        let mut s = series(30, steady);
        // a measurement early on day 30: a tenth of the day's rows so far
        let n = s.last().unwrap().row_count.unwrap() + 100;
        s.push(Measurement {
            at: at(30, 1),
            row_count: Some(n),
            last_modified: Some(at(30, 1)),
        });
        assert_eq!(
            super::judge_volume(&s, at(30, 0).date_naive()).0,
            Verdict::Normal
        );
        assert!(matches!(
            super::judge_volume(&s, at(31, 0).date_naive()).0,
            Verdict::Anomalous(_)
        ));
    }

    #[test]
    fn missing_half_and_doubled_loads_are_anomalous() {
        for (what, factor) in [("missing", 0.0), ("half", 0.5), ("doubled", 2.0)] {
            let s = series(30, |d| {
                if d == 29 {
                    (steady(d) as f64 * factor) as i64
                } else {
                    steady(d)
                }
            });
            match judge_volume(&s).0 {
                Verdict::Anomalous(why) => assert!(why.contains("added"), "{what}: {why}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn weekday_seasonality_makes_empty_weekends_normal_and_an_empty_weekday_not() {
        // 2026-01-05 is a Monday: days 5 and 6 of each week load nothing
        let weekly = |d: i64| if d % 7 >= 5 { 0 } else { steady(d) };
        let s = series(35, weekly);
        let sunday = s.len() as i64 - 1;
        assert_eq!(sunday % 7, 6);
        assert_eq!(
            judge_volume(&s).0,
            Verdict::Normal,
            "an empty Sunday is usual"
        );
        let (_, band) = judge_volume(&s);
        assert_eq!(band.unwrap().basis, "Sundays");
        let s = series(36, |d| if d == 35 { 0 } else { weekly(d) });
        assert!(
            matches!(judge_volume(&s).0, Verdict::Anomalous(_)),
            "an empty Monday is not"
        );
    }

    #[test]
    fn a_table_that_stops_changing_is_stale_and_one_that_keeps_changing_is_not() {
        let s = series(20, steady);
        let now = at(19, 20);
        assert_eq!(judge_freshness(&s, now).0, Verdict::Normal);
        let max_age = judge_freshness(&s, now).1.unwrap();
        assert_eq!(max_age, chrono::TimeDelta::hours(36));
        // the loads stop after day 14: stale once the gap passes a day and a half
        let stopped = series(20, |d| if d > 14 { 0 } else { steady(d) });
        match judge_freshness(&stopped, now).0 {
            Verdict::Anomalous(why) => assert!(why.contains("no change since"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge_freshness(&series(2, steady), now).0,
            Verdict::Learning { .. }
        ));
    }
}
