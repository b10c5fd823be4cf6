//! When a CronJob's next Job is due, after upstream's `mostRecentScheduleTime`,
//! `nextScheduleTime` and `nextScheduleTimeDuration`: from the last schedule time (or the
//! CronJob's creation), the most recent activation not after now, how many were missed, and
//! how long to sleep until the next one.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::schedule::Schedule;

/// Padding after an activation before looking, against clock skew (`nextScheduleDelta`).
pub const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// How many activations passed unmet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    /// More than 100: warned about (`TooManyMissedTimes`).
    Many,
}

/// The inputs from a CronJob: creation time, `status.lastScheduleTime`,
/// `spec.startingDeadlineSeconds`.
#[derive(Debug, Clone, Copy)]
pub struct History {
    pub created: DateTime<Utc>,
    pub last_schedule: Option<DateTime<Utc>>,
    pub starting_deadline: Option<i64>,
}

/// (earliest time considered, most recent activation in (earliest, now], missed, error).
pub fn most_recent(h: &History, now: DateTime<Utc>, s: &Schedule, with_deadline: bool) -> (DateTime<Utc>, Option<DateTime<Utc>>, Missed, Option<String>) {
    let mut earliest = h.last_schedule.unwrap_or(h.created);
    if let (true, Some(sds)) = (with_deadline, h.starting_deadline) {
        let deadline = now - chrono::Duration::seconds(sds);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let invalid = || (earliest, None, Missed::None, Some("time difference between two schedules is less than 1 second".to_string()));
    let Some(t1) = s.next(earliest) else {
        return invalid();
    };
    if now < t1 {
        return (earliest, None, Missed::None, None);
    }
    let Some(t2) = s.next(t1) else {
        return invalid();
    };
    if now < t2 {
        return (earliest, Some(t1), Missed::None, None);
    }
    let between = (t2 - t1).num_milliseconds();
    let between = (between + 500) / 1000; // rounded to seconds
    if between < 1 {
        return invalid();
    }
    let elapsed = (now - t1).num_seconds();
    let missed = elapsed / between + 1;
    // Jump close to now, one interval early, and let the schedule find the exact times.
    let potential = t1 + chrono::Duration::seconds((missed - 2) * between);
    let mut most_recent = None;
    let mut t = s.next(potential);
    while let Some(x) = t {
        if x > now {
            break;
        }
        most_recent = Some(x);
        t = s.next(x);
    }
    let kind = if missed > 100 { Missed::Many } else { Missed::Few };
    (earliest, most_recent, kind, None)
}

/// The unmet activation to start a Job for now (None: nothing due), and whether too many
/// were missed.
pub fn next_schedule_time(h: &History, now: DateTime<Utc>, s: &Schedule) -> Result<(Option<DateTime<Utc>>, Missed), String> {
    let (_, recent, missed, err) = most_recent(h, now, s, true);
    match (recent, err) {
        (_, Some(e)) => Err(e),
        (Some(t), None) if t <= now => Ok((Some(t), missed)),
        _ => Ok((None, missed)),
    }
}

/// How long until the next activation after the most recent one, plus the padding.
pub fn until_next(h: &History, now: DateTime<Utc>, s: &Schedule) -> Duration {
    let (earliest, recent, missed, err) = most_recent(h, now, s, false);
    let base = match (err, recent) {
        (Some(_), _) => now,
        (None, Some(t)) => t,
        (None, None) if missed == Missed::None => earliest,
        (None, None) => now,
    };
    match s.next(base) {
        Some(next) => (next - now).to_std().unwrap_or(Duration::ZERO) + NEXT_SCHEDULE_DELTA,
        // Never again (Feb 30): look once a day in case the schedule changes without an event.
        None => Duration::from_secs(86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;

    fn t(s: &str) -> DateTime<Utc> {
        crate::meta::parse_time(s).unwrap()
    }

    fn every_minute() -> Schedule {
        Schedule::parse("*/1 * * * *", Tz::UTC).unwrap()
    }

    #[test]
    fn nothing_due_before_the_first_activation() {
        let h = History { created: t("2024-05-01T10:00:20Z"), last_schedule: None, starting_deadline: None };
        assert_eq!(next_schedule_time(&h, t("2024-05-01T10:00:40Z"), &every_minute()), Ok((None, Missed::None)));
        let d = until_next(&h, t("2024-05-01T10:00:40Z"), &every_minute());
        assert_eq!(d, Duration::from_millis(20_100));
    }

    #[test]
    fn the_most_recent_missed_activation_is_due() {
        let h = History { created: t("2024-05-01T10:00:20Z"), last_schedule: None, starting_deadline: None };
        assert_eq!(next_schedule_time(&h, t("2024-05-01T10:01:05Z"), &every_minute()), Ok((Some(t("2024-05-01T10:01:00Z")), Missed::None)));
        // Three missed: the latest one is started, and it counts as a few missed.
        assert_eq!(next_schedule_time(&h, t("2024-05-01T10:03:30Z"), &every_minute()), Ok((Some(t("2024-05-01T10:03:00Z")), Missed::Few)));
        // Hours of missed minutes: too many.
        let (at, missed) = next_schedule_time(&h, t("2024-05-01T14:00:30Z"), &every_minute()).unwrap();
        assert_eq!((at, missed), (Some(t("2024-05-01T14:00:00Z")), Missed::Many));
        // After the Job for 10:01 was created, nothing is due until 10:02.
        let h2 = History { last_schedule: Some(t("2024-05-01T10:01:00Z")), ..h };
        assert_eq!(next_schedule_time(&h2, t("2024-05-01T10:01:05Z"), &every_minute()), Ok((None, Missed::None)));
        assert_eq!(until_next(&h2, t("2024-05-01T10:01:05Z"), &every_minute()), Duration::from_millis(55_100));
    }

    #[test]
    fn a_starting_deadline_hides_old_activations() {
        let hourly = Schedule::parse("0 * * * *", Tz::UTC).unwrap();
        let h = History { created: t("2024-05-01T09:30:00Z"), last_schedule: None, starting_deadline: Some(60) };
        // 10:00 was missed by more than 60 s: nothing to start, sleep until 11:00.
        assert_eq!(next_schedule_time(&h, t("2024-05-01T10:05:00Z"), &hourly), Ok((None, Missed::None)));
        assert_eq!(until_next(&h, t("2024-05-01T10:05:00Z"), &hourly), Duration::from_millis(3_300_100));
        assert_eq!(next_schedule_time(&h, t("2024-05-01T10:00:30Z"), &hourly), Ok((Some(t("2024-05-01T10:00:00Z")), Missed::None)));
    }

    #[test]
    fn impossible_schedules_are_errors() {
        let never = Schedule::parse("0 0 30 2 *", Tz::UTC).unwrap();
        let h = History { created: t("2024-05-01T09:30:00Z"), last_schedule: None, starting_deadline: None };
        assert!(next_schedule_time(&h, t("2024-05-01T10:00:00Z"), &never).is_err());
    }
}
