//! Versions: `<releasever>.<YYYYMMDD>.<n>`, `n` counting the composes of
//! one day from 0.

use std::fmt;

use time::Date;

/// A parsed compose version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ComposeVersion {
    pub releasever: String,
    /// `YYYYMMDD`.
    pub day: u32,
    pub n: u32,
}

impl ComposeVersion {
    /// Parses `43.20261125.0`; anything else is `None` (a foreign commit).
    pub fn parse(text: &str) -> Option<ComposeVersion> {
        let mut parts = text.rsplitn(3, '.');
        let n = parts.next()?.parse().ok()?;
        let day_text = parts.next()?;
        let releasever = parts.next()?.to_string();
        if day_text.len() != 8 || releasever.is_empty() {
            return None;
        }
        Some(ComposeVersion {
            releasever,
            day: day_text.parse().ok()?,
            n,
        })
    }

    /// The version of a compose made on `today` after a head at `previous`.
    ///
    /// ```
    /// use corral_compose::ComposeVersion;
    /// use time::macros::date;
    /// let day = date!(2026 - 11 - 25);
    /// assert_eq!(ComposeVersion::next("43", day, None).to_string(), "43.20261125.0");
    /// assert_eq!(
    ///     ComposeVersion::next("43", day, Some("43.20261125.0")).to_string(),
    ///     "43.20261125.1"
    /// );
    /// ```
    pub fn next(releasever: &str, today: Date, previous: Option<&str>) -> ComposeVersion {
        let day = day_number(today);
        let n = previous
            .and_then(ComposeVersion::parse)
            .filter(|p| p.releasever == releasever && p.day == day)
            .map_or(0, |p| p.n + 1);
        ComposeVersion {
            releasever: releasever.to_string(),
            day,
            n,
        }
    }
}

impl ComposeVersion {
    /// The compose day the version names (`YYYYMMDD`), if it is a date.
    pub fn date(&self) -> Option<Date> {
        let month = time::Month::try_from(((self.day / 100) % 100) as u8).ok()?;
        Date::from_calendar_date((self.day / 10_000) as i32, month, (self.day % 100) as u8).ok()
    }
}

impl fmt::Display for ComposeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:08}.{}", self.releasever, self.day, self.n)
    }
}

fn day_number(date: Date) -> u32 {
    date.year() as u32 * 10_000 + u32::from(u8::from(date.month())) * 100 + u32::from(date.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn first_of_the_day_is_zero() {
        let v = ComposeVersion::next("43", date!(2026 - 11 - 25), None);
        assert_eq!(v.to_string(), "43.20261125.0");
        let v = ComposeVersion::next("43", date!(2026 - 11 - 25), Some("43.20261111.4"));
        assert_eq!(v.to_string(), "43.20261125.0");
    }

    #[test]
    fn same_day_counts_up() {
        let v = ComposeVersion::next("43", date!(2026 - 11 - 25), Some("43.20261125.0"));
        assert_eq!(v.to_string(), "43.20261125.1");
        let v = ComposeVersion::next("43", date!(2026 - 11 - 25), Some("43.20261125.9"));
        assert_eq!(v.to_string(), "43.20261125.10");
    }

    #[test]
    fn another_release_or_foreign_version_starts_over() {
        let v = ComposeVersion::next("44", date!(2026 - 11 - 25), Some("43.20261125.3"));
        assert_eq!(v.to_string(), "44.20261125.0");
        let v = ComposeVersion::next("43", date!(2026 - 11 - 25), Some("hand-made"));
        assert_eq!(v.to_string(), "43.20261125.0");
    }

    #[test]
    fn names_its_day() {
        let v = ComposeVersion::parse("43.20261125.2").unwrap();
        assert_eq!(v.date(), Some(date!(2026 - 11 - 25)));
        assert_eq!(ComposeVersion::parse("43.20261340.0").unwrap().date(), None);
    }

    #[test]
    fn parses_and_orders() {
        let a = ComposeVersion::parse("43.20261125.2").unwrap();
        assert_eq!((a.releasever.as_str(), a.day, a.n), ("43", 20261125, 2));
        let b = ComposeVersion::parse("43.20261125.10").unwrap();
        assert!(a < b);
        assert_eq!(ComposeVersion::parse("43.2026112.0"), None);
        assert_eq!(ComposeVersion::parse("20261125.0"), None);
        assert_eq!(
            ComposeVersion::parse("rawhide.20261125.0")
                .unwrap()
                .releasever,
            "rawhide"
        );
    }
}
