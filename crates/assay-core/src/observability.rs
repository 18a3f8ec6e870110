//! Volume and freshness judgement over a container's measurement series (no I/O).
//!
//! **Volume.** A table's measurements are reduced to one row count per UTC day (the day's last measurement), and
//! a day's *load* is its change from the day before. A day's expected load is the level of the week before it
//! (the median of its seven loads, or their mean when the loads follow the weekday) times the day's weekday
//! share (1 without a weekly rhythm). The loads follow the weekday when every weekday was seen twice in the
//! window ([`WINDOW_DAYS`]) and the quietest weekday's median is below [`SEASONAL_RATIO`] of the busiest one's
//! (weekends that load little or nothing); a weekday's share is its median over the mean of the seven medians.
//! The band's width comes from how far each earlier day of the window was from what the week before it
//! expected, relative to that expectation (never to less than a tenth of the overall median): the expected load
//! plus or minus [`BAND_MADS`] scaled median absolute deviations of those errors, and never narrower than
//! [`MIN_BAND`] of the expected load. No verdict before [`MIN_DAYS`] days of history. A missing or doubled load
//! falls outside the band; growth at the usual pace does not; a half load does unless the daily noise is
//! nearly as large (see the closing figures of `assay-bench detect`).
//!
//! **Freshness.** The intervals between modifications (measurements whose modification counter moved) give the
//! usual gap; the longest one seen, times [`FRESHNESS_SLACK`], is the maximum age. A table whose last
//! modification is older than that is stale. No verdict before [`MIN_CHANGES`] modifications have been seen.
//!
//! The median absolute deviation is scaled by 1.4826 so that it estimates a normal spread's standard deviation;
//! with [`BAND_MADS`] = 3.5 a day with normal noise falls outside with a probability of about 5e-4.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::collections::BTreeMap;

/// Days of history a band is computed from.
pub const WINDOW_DAYS: i64 = 28;
/// Days of history before volume is judged (two of each weekday, to tell a weekly rhythm).
pub const MIN_DAYS: usize = 14;
/// Width of the volume band in scaled median absolute deviations of the relative prediction errors.
pub const BAND_MADS: f64 = 3.5;
/// The band is never narrower than this share of the day's expected load on either side.
pub const MIN_BAND: f64 = 0.3;
/// Loads follow the weekday when the quietest weekday's median is below this share of the busiest one's.
pub const SEASONAL_RATIO: f64 = 0.6;
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

const WEEKDAYS: [&str; 7] = [
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
    "Sundays",
];

/// The band for the load of `day` from the loads of the [`WINDOW_DAYS`] before it (see the module header).
pub fn volume_band(loads: &[(NaiveDate, f64)], day: NaiveDate) -> Option<Band> {
    let window: Vec<(NaiveDate, f64)> = loads
        .iter()
        .filter(|(d, _)| *d < day && (day - *d).num_days() <= WINDOW_DAYS)
        .copied()
        .collect();
    if window.len() < MIN_DAYS {
        return None;
    }
    let wd = |d: &NaiveDate| d.weekday().num_days_from_monday() as usize;
    let overall = median(&mut window.iter().map(|x| x.1).collect::<Vec<_>>());
    let mut by_weekday: [Vec<f64>; 7] = Default::default();
    for (d, x) in &window {
        by_weekday[wd(d)].push(*x);
    }
    let medians: Vec<f64> = by_weekday
        .iter()
        .map(|xs| median(&mut xs.clone()))
        .collect();
    let (lo, hi) = medians
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), m| (a.min(*m), b.max(*m)));
    let seasonal = by_weekday.iter().all(|xs| xs.len() >= 2) && lo < SEASONAL_RATIO * hi;
    // a weekday's share of a usual week (all 1 without a weekly rhythm)
    let mean_median = medians.iter().sum::<f64>() / 7.0;
    let factor = |d: &NaiveDate| {
        if seasonal && mean_median > 0.0 {
            medians[wd(d)] / mean_median
        } else {
            1.0
        }
    };
    // the expected load of `d`: the level of the week before it times its weekday's share (the level follows a
    // trend; a median over the whole window would lag behind it)
    let expected = |d: &NaiveDate| -> Option<f64> {
        let week: Vec<f64> = window
            .iter()
            .filter(|(e, _)| *e < *d && (*d - *e).num_days() <= 7)
            .map(|x| x.1)
            .collect();
        if week.len() < 7 {
            return None;
        }
        let level = if seasonal {
            week.iter().sum::<f64>() / 7.0
        } else {
            median(&mut week.clone())
        };
        Some(level * factor(d))
    };
    let scale = |c: f64| c.abs().max(0.1 * overall.abs()).max(1.0);
    // how far each day of the window was from what the week before it expected: the spread of a prediction
    // made the same way as today's
    let mut residuals: Vec<f64> = window
        .iter()
        .filter_map(|(d, x)| {
            let c = expected(d)?;
            Some(((x - c) / scale(c)).abs())
        })
        .collect();
    let center = expected(&day).unwrap_or(overall * factor(&day));
    let spread = if residuals.len() >= 5 {
        (BAND_MADS * 1.4826 * median(&mut residuals)).max(MIN_BAND)
    } else {
        MIN_BAND.max(0.5)
    };
    let half = spread * scale(center);
    Some(Band {
        low: center - half,
        high: center + half,
        basis: if seasonal {
            WEEKDAYS[wd(&day)].to_string()
        } else {
            "all days".into()
        },
        days: window.len(),
    })
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
        let short = series(12, steady);
        assert!(matches!(judge_volume(&short).0, Verdict::Learning { .. }));
        // every day of a long steady history is normal, none is flagged
        for end in 17..40 {
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
