//! Cron schedules with the semantics of robfig/cron v3's standard parser, which upstream's
//! CronJob controller uses (`cron.ParseStandard`): five fields (minute, hour, day of month,
//! month, day of week), the descriptors `@yearly`/`@annually`/`@monthly`/`@weekly`/`@daily`/
//! `@midnight`/`@hourly`, `@every <duration>`, and an optional `TZ=`/`CRON_TZ=` prefix.
//!
//! Why not a cron crate: the ones on crates.io (cron, croner, saffron) each differ from
//! robfig where users notice: `cron` wants a seconds field and numbers weekdays 1-7, `croner`
//! treats `*/1` in the day fields as a restriction and resolves DST gaps and folds its own way,
//! `saffron` has no time zones. robfig decides whether day-of-month and day-of-week are ANDed
//! or ORed by a "star bit", skips times that fall into a DST gap and fires twice in a repeated
//! hour; CronJobs inherit all of that, so the search below follows robfig's `SpecSchedule.Next`
//! step by step, on wall-clock times of a chrono-tz zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Set on a field whose expression started with `*` or `?` (and no step above 1).
const STAR_BIT: u64 = 1 << 63;

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds { min: 0, max: 59, names: &[] };
const HOURS: Bounds = Bounds { min: 0, max: 23, names: &[] };
const DOM: Bounds = Bounds { min: 1, max: 31, names: &[] };
const MONTHS: Bounds = Bounds { min: 1, max: 12, names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] };
const DOW: Bounds = Bounds { min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

/// A parsed schedule: the bit sets of robfig's `SpecSchedule`, or `@every`'s constant delay.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Spec { minute: u64, hour: u64, dom: u64, month: u64, dow: u64, tz: Tz },
    Every(std::time::Duration),
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    if step == 1 {
        return (!(u64::MAX << (max + 1))) & (u64::MAX << min);
    }
    (min..=max).step_by(step as usize).fold(0, |b, i| b | (1 << i))
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR_BIT
}

fn parse_int(s: &str) -> Result<u32, String> {
    let n: i64 = s.parse().map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {s}"));
    }
    u32::try_from(n).map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: value out of range"))
}

fn int_or_name(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + b.min);
    }
    parse_int(s)
}

/// One comma-separated piece of a field (robfig's getRange).
fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (mut start, mut end, mut extra) = (b.min, b.max, 0);
    if low_high[0] == "*" || low_high[0] == "?" {
        extra = STAR_BIT;
    } else {
        start = int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!("beginning of range ({start}) below minimum ({}): {expr}", b.min));
    }
    if end > b.max {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn field(f: &str, b: &Bounds) -> Result<u64, String> {
    f.split(',').try_fold(0, |acc, r| Ok(acc | range(r, b)?))
}

/// Go's `time.ParseDuration` (`@every 1h30m`, `@every 90s`, `@every 1.5h`).
fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let err = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        rest = &rest[unit_end..];
        total += num * nanos;
    }
    if neg {
        return Ok(std::time::Duration::ZERO);
    }
    Ok(std::time::Duration::from_nanos(total as u64))
}

impl Schedule {
    /// Parses a schedule as `cron.ParseStandard` does; `tz` is the zone when the spec names
    /// none (upstream: the controller's local zone, here UTC, or `spec.timeZone`).
    pub fn parse(spec: &str, tz: Tz) -> Result<Schedule, String> {
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        let mut spec = spec;
        let mut tz = tz;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let eq = spec.find('=').unwrap_or(0);
            let sp = spec.find(' ').unwrap_or(spec.len());
            let name = &spec[eq + 1..sp];
            tz = name.parse().map_err(|_| format!("provided bad location {name}: unknown time zone {name}"))?;
            spec = spec[sp..].trim();
        }
        if spec.starts_with('@') {
            let (min, hr, d, mon, w) = (1 << MINUTES.min, 1 << HOURS.min, 1 << DOM.min, 1 << MONTHS.min, 1 << DOW.min);
            let (minute, hour, dom, month, dow) = match spec {
                "@yearly" | "@annually" => (min, hr, d, mon, all(&DOW)),
                "@monthly" => (min, hr, d, all(&MONTHS), all(&DOW)),
                "@weekly" => (min, hr, all(&DOM), all(&MONTHS), w),
                "@daily" | "@midnight" => (min, hr, all(&DOM), all(&MONTHS), all(&DOW)),
                "@hourly" => (min, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
                _ => {
                    if let Some(d) = spec.strip_prefix("@every ") {
                        let dur = parse_go_duration(d).map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                        return Ok(Schedule::every(dur));
                    }
                    return Err(format!("unrecognized descriptor: {spec}"));
                }
            };
            return Ok(Schedule::Spec { minute, hour, dom, month, dow, tz });
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
        }
        Ok(Schedule::Spec {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)?,
            dow: field(fields[4], &DOW)?,
            tz,
        })
    }

    /// robfig's `Every`: at least a second, whole seconds.
    fn every(d: std::time::Duration) -> Schedule {
        let secs = d.as_secs().max(1);
        Schedule::Every(std::time::Duration::from_secs(secs))
    }

    /// The first activation strictly after `t` (None: none within five years).
    pub fn next(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let d = Duration::from_std(*d).ok()?;
                Some(t + d - Duration::nanoseconds(t.nanosecond() as i64))
            }
            Schedule::Spec { minute, hour, dom, month, dow, tz } => {
                let s = Spec { minute: *minute, hour: *hour, dom: *dom, month: *month, dow: *dow };
                s.next(t.with_timezone(tz)).map(|t| t.with_timezone(&Utc))
            }
        }
    }
}

struct Spec {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

fn has(set: u64, v: u32) -> bool {
    set & (1 << v) != 0
}

/// Go's `time.Date` in a zone: wall-clock fields normalized (month 13 is January of the next
/// year, day 32 the next month), then placed in the zone the way Go resolves times that a DST
/// change skips or repeats.
fn go_date(tz: &Tz, year: i32, month0: i64, day: i64, h: u32, m: u32, s: u32) -> Option<DateTime<Tz>> {
    let y = year as i64 + month0.div_euclid(12);
    let first = NaiveDate::from_ymd_opt(y as i32, month0.rem_euclid(12) as u32 + 1, 1)?;
    let date = first.checked_add_signed(Duration::days(day - 1))?;
    let naive = date.and_hms_opt(h, m, s)?;
    Some(place(tz, naive))
}

/// Go's lookup: the offset in effect at the wall-clock time read as UTC, corrected once if the
/// resulting instant falls outside that offset's period.
fn place(tz: &Tz, naive: NaiveDateTime) -> DateTime<Tz> {
    let off1 = tz.offset_from_utc_datetime(&naive).fix();
    let utc = naive - Duration::seconds(off1.local_minus_utc() as i64);
    let off2 = tz.offset_from_utc_datetime(&utc).fix();
    let off = if off2 != off1 { off2 } else { off1 };
    tz.from_utc_datetime(&(naive - Duration::seconds(off.local_minus_utc() as i64)))
}

fn add_date(t: &DateTime<Tz>, months: i64, days: i64) -> Option<DateTime<Tz>> {
    go_date(&t.timezone(), t.year(), t.month0() as i64 + months, t.day() as i64 + days, t.hour(), t.minute(), t.second())
}

impl Spec {
    fn day_matches(&self, t: &DateTime<Tz>) -> bool {
        let dom = has(self.dom, t.day());
        let dow = has(self.dow, t.weekday().num_days_from_sunday());
        if self.dom & STAR_BIT != 0 || self.dow & STAR_BIT != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// robfig's `SpecSchedule.Next`, field by field on the zone's wall clock.
    fn next(&self, t: DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = t.timezone();
        let mut t = t + Duration::seconds(1) - Duration::nanoseconds(t.nanosecond() as i64);
        let mut added = false;
        let year_limit = t.year() + 5;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while !has(self.month, t.month()) {
                if !added {
                    added = true;
                    t = go_date(&tz, t.year(), t.month0() as i64, 1, 0, 0, 0)?;
                }
                t = add_date(&t, 1, 0)?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&t) {
                if !added {
                    added = true;
                    t = go_date(&tz, t.year(), t.month0() as i64, t.day() as i64, 0, 0, 0)?;
                }
                t = add_date(&t, 0, 1)?;
                // A zone whose midnight does not exist that day: back to the day's start.
                if t.hour() != 0 {
                    if t.hour() > 12 {
                        t += Duration::hours(24 - t.hour() as i64);
                    } else {
                        t -= Duration::hours(t.hour() as i64);
                    }
                }
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !has(self.hour, t.hour()) {
                if !added {
                    added = true;
                    t = go_date(&tz, t.year(), t.month0() as i64, t.day() as i64, t.hour(), 0, 0)?;
                }
                t += Duration::hours(1);
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !has(self.minute, t.minute()) {
                if !added {
                    added = true;
                    let ts = t.timestamp();
                    t = tz.timestamp_opt(ts - ts.rem_euclid(60), 0).single()?;
                }
                t += Duration::minutes(1);
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            // Standard schedules fire at second 0.
            while t.second() != 0 {
                if !added {
                    added = true;
                    t = tz.timestamp_opt(t.timestamp(), 0).single()?;
                }
                t += Duration::seconds(1);
                if t.second() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(spec: &str, tz: Tz, from: &str) -> String {
        let s = Schedule::parse(spec, tz).unwrap();
        s.next(utc(from)).unwrap().with_timezone(&tz).to_rfc3339()
    }

    #[test]
    fn standard_fields_and_descriptors() {
        assert_eq!(next("*/1 * * * *", Tz::UTC, "2024-05-01T10:00:30Z"), "2024-05-01T10:01:00+00:00");
        assert_eq!(next("*/15 * * * *", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-01T10:15:00+00:00");
        assert_eq!(next("0 9-17 * JAN-MAR mon,fri", Tz::UTC, "2024-05-01T10:00:00Z"), "2025-01-03T09:00:00+00:00");
        assert_eq!(next("@hourly", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-01T11:00:00+00:00");
        assert_eq!(next("@daily", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-02T00:00:00+00:00");
        assert_eq!(next("@weekly", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-05T00:00:00+00:00");
        assert_eq!(next("@monthly", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-06-01T00:00:00+00:00");
        assert_eq!(next("@yearly", Tz::UTC, "2024-05-01T10:00:00Z"), "2025-01-01T00:00:00+00:00");
        // Feb 29 only exists in leap years.
        assert_eq!(next("0 0 29 2 *", Tz::UTC, "2024-03-01T00:00:00Z"), "2028-02-29T00:00:00+00:00");
        // Never: Feb 30.
        assert!(Schedule::parse("0 0 30 2 *", Tz::UTC).unwrap().next(utc("2024-01-01T00:00:00Z")).is_none());
    }

    #[test]
    fn day_of_month_and_week_follow_the_star_bit() {
        // Both restricted: either matches (1st of the month OR a Monday).
        assert_eq!(next("0 0 1 * MON", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-06T00:00:00+00:00");
        // `*` in day-of-month: only Mondays; so is `*/1` (still a star), but not `*/2`.
        assert_eq!(next("0 0 * * MON", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-06T00:00:00+00:00");
        assert_eq!(next("0 0 */1 * MON", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-06T00:00:00+00:00");
        assert_eq!(next("0 0 */2 * MON", Tz::UTC, "2024-05-01T10:00:00Z"), "2024-05-03T00:00:00+00:00");
    }

    #[test]
    fn time_zones_and_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 09:00 in New York is 13:00 UTC in summer, 14:00 in winter.
        assert_eq!(Schedule::parse("0 9 * * *", ny).unwrap().next(utc("2024-07-01T00:00:00Z")).unwrap(), utc("2024-07-01T13:00:00Z"));
        assert_eq!(Schedule::parse("0 9 * * *", ny).unwrap().next(utc("2024-12-01T00:00:00Z")).unwrap(), utc("2024-12-01T14:00:00Z"));
        // Spring forward (2024-03-10 02:00 -> 03:00): 02:30 does not exist that day and is skipped.
        assert_eq!(next("30 2 * * *", ny, "2024-03-09T12:00:00Z"), "2024-03-11T02:30:00-04:00");
        // Fall back (2024-11-03 02:00 -> 01:00): 01:30 happens twice and fires twice.
        let s = Schedule::parse("30 1 * * *", ny).unwrap();
        let first = s.next(utc("2024-11-03T04:00:00Z")).unwrap();
        assert_eq!(first, utc("2024-11-03T05:30:00Z"));
        assert_eq!(s.next(first).unwrap(), utc("2024-11-03T06:30:00Z"));
        assert_eq!(s.next(utc("2024-11-03T06:30:00Z")).unwrap(), utc("2024-11-04T06:30:00Z"));
        // An hourly schedule keeps firing every real hour through both changes.
        let h = Schedule::parse("0 * * * *", ny).unwrap();
        assert_eq!(h.next(utc("2024-03-10T06:30:00Z")).unwrap(), utc("2024-03-10T07:00:00Z"));
        assert_eq!(h.next(utc("2024-11-03T05:30:00Z")).unwrap(), utc("2024-11-03T06:00:00Z"));
        // TZ= in the spec overrides the default zone.
        let tokyo = Schedule::parse("TZ=Asia/Tokyo 0 0 * * *", Tz::UTC).unwrap();
        assert_eq!(tokyo.next(utc("2024-05-01T10:00:00Z")).unwrap(), utc("2024-05-01T15:00:00Z"));
    }

    #[test]
    fn every_and_errors() {
        let e = Schedule::parse("@every 1h30m", Tz::UTC).unwrap();
        assert_eq!(e.next(utc("2024-05-01T10:00:00.5Z")).unwrap(), utc("2024-05-01T11:30:00Z"));
        assert_eq!(Schedule::parse("@every 100ms", Tz::UTC).unwrap(), Schedule::Every(std::time::Duration::from_secs(1)));
        assert_eq!(Schedule::parse("* * *", Tz::UTC).unwrap_err(), "expected exactly 5 fields, found 3: [* * *]");
        assert_eq!(Schedule::parse("61 * * * *", Tz::UTC).unwrap_err(), "end of range (61) above maximum (59): 61");
        assert_eq!(Schedule::parse("* * * * 7", Tz::UTC).unwrap_err(), "end of range (7) above maximum (6): 7");
        assert_eq!(Schedule::parse("@often", Tz::UTC).unwrap_err(), "unrecognized descriptor: @often");
        assert!(Schedule::parse("*/0 * * * *", Tz::UTC).is_err());
        assert!(Schedule::parse("@every 5x", Tz::UTC).is_err());
    }
}
