//! rpm's version comparison (`rpmvercmp`), for "is the repository's
//! package newer than the image's".

use std::cmp::Ordering;

/// An epoch, version and release.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Evr {
    pub epoch: u32,
    pub version: String,
    pub release: String,
}

impl Evr {
    /// Parses `[epoch:]version-release` (the form SBOMs record).
    pub fn parse(s: &str) -> Evr {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) if e.chars().all(|c| c.is_ascii_digit()) => {
                (e.parse().unwrap_or(0), rest)
            }
            _ => (0, s),
        };
        let (version, release) = rest.rsplit_once('-').unwrap_or((rest, ""));
        Evr {
            epoch,
            version: version.to_string(),
            release: release.to_string(),
        }
    }
}

impl std::fmt::Display for Evr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        write!(f, "{}-{}", self.version, self.release)
    }
}

impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Evr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| vercmp(&self.version, &other.version))
            .then_with(|| vercmp(&self.release, &other.release))
    }
}

/// rpm's segment-wise comparison: digits numerically, letters as strings,
/// a digit segment newer than a letter one, `~` older than anything and
/// `^` newer than the end.
///
/// ```
/// use std::cmp::Ordering;
/// use corral_image::rpmvercmp::vercmp;
///
/// assert_eq!(vercmp("1.10", "1.9"), Ordering::Greater);
/// assert_eq!(vercmp("2.0~rc1", "2.0"), Ordering::Less);
/// ```
pub fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while a.first().is_some_and(|c| sep(*c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|c| sep(*c)) {
            b = &b[1..];
        }
        let (at, bt) = (a.first() == Some(&b'~'), b.first() == Some(&b'~'));
        if at || bt {
            if !bt {
                return Ordering::Less;
            }
            if !at {
                return Ordering::Greater;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        let (ac, bc) = (a.first() == Some(&b'^'), b.first() == Some(&b'^'));
        if ac || bc {
            if a.is_empty() {
                return Ordering::Less;
            }
            if b.is_empty() {
                return Ordering::Greater;
            }
            if !ac {
                return Ordering::Greater;
            }
            if !bc {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        // the one with something left is newer
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let numeric = a[0].is_ascii_digit();
        let take = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (na, nb) = (take(a), take(b));
        if nb == 0 {
            // segments of different kinds: numbers are newer
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sa, sb) = (&a[..na], &b[..nb]);
        let ord = if numeric {
            let trim = |s: &[u8]| {
                let z = s.iter().take_while(|c| **c == b'0').count();
                s[z..].to_vec()
            };
            let (ta, tb) = (trim(sa), trim(sb));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(&tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[na..];
        b = &b[nb..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn compares_like_rpm() {
        // cases from rpm's own test suite (tests/rpmvercmp.at)
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("5.5p1", "5.5p10", Less),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("1.0aa", "1.0a", Greater),
            ("10", "9", Greater),
            ("010", "10", Equal),
            ("a", "1", Less),
            ("1", "a", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0^git1", "1.01", Less),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("fc4", "fc.4", Equal),
            ("1.0", "1.0.", Equal),
        ] {
            assert_eq!(vercmp(a, b), want, "{a} vs {b}");
            assert_eq!(vercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn evr_orders_epoch_first() {
        assert!(Evr::parse("1:1.0-1") > Evr::parse("2.0-1"));
        assert!(Evr::parse("1.1-1") > Evr::parse("1.0-9"));
        assert!(Evr::parse("1.0-2") > Evr::parse("1.0-1"));
        assert_eq!(Evr::parse("1:2.3-4").to_string(), "1:2.3-4");
        assert_eq!(Evr::parse("2.3-4").to_string(), "2.3-4");
    }
}
