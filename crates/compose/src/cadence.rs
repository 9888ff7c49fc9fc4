//! Release days and whether a stream is due, against a [`Clock`] so tests
//! fix the date.

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::stream::Cadence;

/// Today's date (UTC).
pub trait Clock {
    fn today(&self) -> Date;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn today(&self) -> Date {
        OffsetDateTime::now_utc().date()
    }
}

/// A clock stopped on one day.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Date);

impl Clock for FixedClock {
    fn today(&self) -> Date {
        self.0
    }
}

/// Where a stream stands against its cadence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// The latest release day on or before today, if any.
    #[serde(with = "opt_date")]
    pub last_release_day: Option<Date>,
    /// The release day the next regular compose belongs to: the last one
    /// when it is still owed, else the first after today.
    #[serde(with = "date")]
    pub next_release_day: Date,
    /// A regular compose is owed: a release day has come and the head was
    /// composed before it (or there is no head).
    pub due: bool,
}

impl Cadence {
    /// The latest release day on or before `day`.
    pub fn release_on_or_before(&self, day: Date) -> Option<Date> {
        let every = i64::from(self.every_days);
        let offset = (day - self.anchor).whole_days();
        // Release days run both ways from the anchor.
        let k = offset.div_euclid(every);
        let release = self.anchor + Duration::days(k * every);
        (release <= day).then_some(release)
    }

    /// The first release day strictly after `day`.
    pub fn release_after(&self, day: Date) -> Date {
        let every = i64::from(self.every_days);
        let offset = (day - self.anchor).whole_days();
        let k = offset.div_euclid(every) + 1;
        self.anchor + Duration::days(k * every)
    }

    /// The schedule on `today` for a ref whose head was composed on `head`.
    pub fn schedule(&self, today: Date, head: Option<Date>) -> Schedule {
        let last = self.release_on_or_before(today);
        let due = match (last, head) {
            (Some(release), Some(head)) => head < release,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let next = match last {
            Some(release) if due => release,
            _ => self.release_after(today),
        };
        Schedule {
            last_release_day: last,
            next_release_day: next,
            due,
        }
    }
}

mod date {
    use serde::Serializer;
    use time::Date;
    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::stream::format_date(*d))
    }
}

mod opt_date {
    use serde::Serializer;
    use time::Date;
    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&crate::stream::format_date(*d)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn biweekly() -> Cadence {
        Cadence {
            every_days: 14,
            anchor: date!(2026 - 01 - 06),
        }
    }

    #[test]
    fn release_days_fall_every_n_days_from_the_anchor() {
        let c = biweekly();
        assert_eq!(
            c.release_on_or_before(date!(2026 - 01 - 06)),
            Some(date!(2026 - 01 - 06))
        );
        assert_eq!(
            c.release_on_or_before(date!(2026 - 01 - 19)),
            Some(date!(2026 - 01 - 06))
        );
        assert_eq!(
            c.release_on_or_before(date!(2026 - 01 - 20)),
            Some(date!(2026 - 01 - 20))
        );
        // 2026-11-24 is 322 days after the anchor: 23 periods.
        assert_eq!(
            c.release_on_or_before(date!(2026 - 11 - 25)),
            Some(date!(2026 - 11 - 24))
        );
        assert_eq!(
            c.release_after(date!(2026 - 11 - 25)),
            date!(2026 - 12 - 08)
        );
        assert_eq!(
            c.release_after(date!(2026 - 11 - 24)),
            date!(2026 - 12 - 08)
        );
        // Before the anchor the cadence runs backwards.
        assert_eq!(
            c.release_on_or_before(date!(2026 - 01 - 01)),
            Some(date!(2025 - 12 - 23))
        );
    }

    #[test]
    fn due_when_a_release_day_passed_since_the_head() {
        let c = biweekly();
        let today = date!(2026 - 11 - 25);
        let s = c.schedule(today, Some(date!(2026 - 11 - 10)));
        assert!(s.due);
        assert_eq!(s.next_release_day, date!(2026 - 11 - 24));
        let s = c.schedule(today, Some(date!(2026 - 11 - 24)));
        assert!(!s.due);
        assert_eq!(s.next_release_day, date!(2026 - 12 - 08));
        // An out-of-band compose after the release day covers it.
        let s = c.schedule(today, Some(date!(2026 - 11 - 25)));
        assert!(!s.due);
    }

    #[test]
    fn a_new_ref_is_due() {
        let s = biweekly().schedule(date!(2026 - 02 - 01), None);
        assert!(s.due);
        assert_eq!(s.next_release_day, date!(2026 - 01 - 20));
    }

    #[test]
    fn the_clock_is_a_seam() {
        let clock = FixedClock(date!(2026 - 01 - 20));
        let s = biweekly().schedule(clock.today(), Some(date!(2026 - 01 - 19)));
        assert!(s.due);
        assert_eq!(s.next_release_day, date!(2026 - 01 - 20));
        let _ = SystemClock.today();
    }
}
