//! When a deployed update may reboot the host, Zincati's way: the
//! `[updates]` section of `/etc/corral/host.toml` picks a strategy
//! (`immediate`, `periodic` maintenance windows, or `fleet_lock`, a reboot
//! slot from a FleetLock server), and a rollout wariness that spreads a
//! fleet's hosts over a window after a release. Everything here computes
//! from a given clock; `auto` does the I/O.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Minutes in a week: windows repeat weekly.
const WEEK_MINUTES: u32 = 7 * 24 * 60;

/// Which strategy gates the reboot into a new deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Reboot as soon as the update is deployed.
    #[default]
    Immediate,
    /// Reboot only inside one of the configured weekly windows (UTC).
    Periodic,
    /// Reboot only with a slot from a FleetLock server.
    #[serde(alias = "fleet-lock")]
    FleetLock,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Immediate => "immediate",
            Strategy::Periodic => "periodic",
            Strategy::FleetLock => "fleet_lock",
        }
    }
}

/// `[updates]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct UpdatesConfig {
    pub strategy: Strategy,
    /// Seconds after a release within which this host's own stable delay
    /// falls; 0 deploys at once.
    pub rollout_wariness: u64,
    /// What reboots the host (argv).
    pub reboot_command: Vec<String>,
    pub periodic: PeriodicConfig,
    pub fleet_lock: Option<FleetLockSettings>,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        UpdatesConfig {
            strategy: Strategy::Immediate,
            rollout_wariness: 0,
            reboot_command: vec!["systemctl".into(), "reboot".into()],
            periodic: PeriodicConfig::default(),
            fleet_lock: None,
        }
    }
}

/// `[updates.periodic]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PeriodicConfig {
    #[serde(default)]
    pub window: Vec<WindowConfig>,
}

/// One `[[updates.periodic.window]]`: on these days, from this time
/// (UTC), for this long.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WindowConfig {
    /// `Mon` … `Sun` (or the full names).
    pub days: Vec<String>,
    /// `HH:MM`, UTC.
    pub start_time: String,
    pub length_minutes: u32,
}

/// `[updates.fleet-lock]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FleetLockSettings {
    /// The server's base URL (`http://MIRROR:5000/` for `corral mirror
    /// serve` with `[fleetlock]`); basic credentials may be in it.
    pub base_url: String,
    #[serde(default = "default_group")]
    pub group: String,
}

fn default_group() -> String {
    "default".into()
}

/// One weekly window in minutes from Monday 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u32,
    pub length: u32,
}

fn weekday(name: &str) -> Option<u32> {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let n = name.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| n.len() >= 3 && d.starts_with(&n) && (n.len() == 3 || n == *d))
        .map(|i| i as u32)
}

fn parse_time(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
}

impl UpdatesConfig {
    /// Checks what serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.reboot_command.is_empty() || self.reboot_command[0].is_empty() {
            return Err("updates.reboot-command is empty".into());
        }
        self.windows()?;
        if self.strategy == Strategy::Periodic && self.periodic.window.is_empty() {
            return Err(
                "updates.strategy is periodic but there is no [[updates.periodic.window]]".into(),
            );
        }
        match (&self.fleet_lock, self.strategy) {
            (None, Strategy::FleetLock) => {
                return Err(
                    "updates.strategy is fleet_lock but [updates.fleet-lock] base-url is not set"
                        .into(),
                )
            }
            (Some(f), _) => {
                if !(f.base_url.starts_with("http://") || f.base_url.starts_with("https://")) {
                    return Err(format!(
                        "updates.fleet-lock.base-url {:?} must start with http:// or https://",
                        f.base_url
                    ));
                }
                if f.group.is_empty()
                    || !f
                        .group
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                {
                    return Err(format!(
                        "updates.fleet-lock.group {:?} is not a group name (letters, digits, '.' and '-')",
                        f.group
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The periodic windows, one per configured day.
    pub fn windows(&self) -> Result<Vec<Window>, String> {
        let mut out = Vec::new();
        for (i, w) in self.periodic.window.iter().enumerate() {
            let key = format!("updates.periodic.window[{i}]");
            let start = parse_time(&w.start_time)
                .ok_or_else(|| format!("{key}.start-time {:?} is not HH:MM (UTC)", w.start_time))?;
            if w.length_minutes == 0 || w.length_minutes > WEEK_MINUTES {
                return Err(format!(
                    "{key}.length-minutes is {}; it must be 1 to {WEEK_MINUTES}",
                    w.length_minutes
                ));
            }
            if w.days.is_empty() {
                return Err(format!("{key}.days is empty"));
            }
            for d in &w.days {
                let day = weekday(d)
                    .ok_or_else(|| format!("{key}.days: {d:?} is not a day (Mon … Sun)"))?;
                out.push(Window {
                    start: day * 24 * 60 + start,
                    length: w.length_minutes,
                });
            }
        }
        Ok(out)
    }
}

/// Minutes since Monday 00:00 UTC of the week `secs` falls in.
fn minute_of_week(secs: u64) -> u32 {
    // 1970-01-01 was a Thursday (3 days after a Monday).
    let days = secs / 86_400;
    let weekday = ((days + 3) % 7) as u32;
    weekday * 24 * 60 + ((secs % 86_400) / 60) as u32
}

/// Whether `now` (seconds since the epoch) is inside one of `windows`.
pub fn in_window(windows: &[Window], now: u64) -> bool {
    let m = minute_of_week(now);
    windows
        .iter()
        .any(|w| (m + WEEK_MINUTES - w.start) % WEEK_MINUTES < w.length)
}

/// The start of the next window after `now` (seconds since the epoch),
/// or `now` itself when it is inside one.
pub fn next_window(windows: &[Window], now: u64) -> Option<u64> {
    if in_window(windows, now) {
        return Some(now);
    }
    let m = minute_of_week(now);
    windows
        .iter()
        .map(|w| (w.start + WEEK_MINUTES - m) % WEEK_MINUTES)
        .min()
        .map(|minutes| now - now % 60 + u64::from(minutes) * 60)
}

/// This host's delay after a release of `commit`, in `[0, window)`:
/// stable for one host and commit (so a retry does not draw again), spread
/// across hosts and different from one release to the next (so the same
/// host is not always first).
pub fn wariness_delay(machine_id: &str, commit: &str, window: u64) -> u64 {
    if window == 0 {
        return 0;
    }
    let mut h = Sha256::new();
    h.update(b"corral rollout wariness\0");
    h.update(machine_id.trim().as_bytes());
    h.update(b"\0");
    h.update(commit.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) % window
}

/// The FleetLock client id of a host: derived from its machine id (like
/// systemd's app-specific ids), so the server never learns the machine id.
pub fn fleet_lock_id(machine_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"corral fleetlock\0");
    h.update(machine_id.trim().as_bytes());
    to_hex(&h.finalize()[..16])
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> UpdatesConfig {
        let c: UpdatesConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        c
    }

    // 2026-01-05 was a Monday.
    const MON_0000: u64 = 1_767_571_200;
    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    #[test]
    fn the_epoch_constant_is_a_monday() {
        assert_eq!(minute_of_week(MON_0000), 0);
        // 1970-01-01 00:00 was a Thursday
        assert_eq!(minute_of_week(0), 3 * 24 * 60);
    }

    #[test]
    fn a_window_opens_and_closes_on_its_days_only() {
        let c = cfg(
            "strategy = \"periodic\"\n[[periodic.window]]\ndays = [\"Sat\", \"sunday\"]\nstart-time = \"23:30\"\nlength-minutes = 60\n",
        );
        let w = c.windows().unwrap();
        let sat = MON_0000 + 5 * DAY;
        assert!(!in_window(&w, sat + 23 * HOUR + 29 * MIN));
        assert!(in_window(&w, sat + 23 * HOUR + 30 * MIN));
        // it runs past midnight into Sunday
        assert!(in_window(&w, sat + DAY + 29 * MIN));
        assert!(!in_window(&w, sat + DAY + 30 * MIN));
        // Sunday's window runs past the end of the week into Monday
        assert!(in_window(&w, MON_0000 + 7 * DAY + 10 * MIN));
        assert!(!in_window(&w, MON_0000 + 7 * DAY + 30 * MIN));
        assert!(!in_window(&w, MON_0000 + 2 * DAY + 23 * HOUR + 45 * MIN));
    }

    #[test]
    fn the_next_window_is_the_nearest_start() {
        let c = cfg(
            "strategy = \"periodic\"\n[[periodic.window]]\ndays = [\"Wed\"]\nstart-time = \"02:00\"\nlength-minutes = 30\n[[periodic.window]]\ndays = [\"Fri\"]\nstart-time = \"22:00\"\nlength-minutes = 120\n",
        );
        let w = c.windows().unwrap();
        let tue_1215 = MON_0000 + DAY + 12 * HOUR + 15 * MIN + 7;
        assert_eq!(
            next_window(&w, tue_1215),
            Some(MON_0000 + 2 * DAY + 2 * HOUR)
        );
        let wed_0300 = MON_0000 + 2 * DAY + 3 * HOUR;
        assert_eq!(
            next_window(&w, wed_0300),
            Some(MON_0000 + 4 * DAY + 22 * HOUR)
        );
        // after Friday's, it is next week's Wednesday
        let sat = MON_0000 + 5 * DAY + HOUR;
        assert_eq!(next_window(&w, sat), Some(MON_0000 + 9 * DAY + 2 * HOUR));
        let inside = MON_0000 + 4 * DAY + 23 * HOUR;
        assert_eq!(next_window(&w, inside), Some(inside));
        assert_eq!(next_window(&[], inside), None);
    }

    #[test]
    fn the_wariness_delay_is_stable_spread_and_inside_the_window() {
        let window = 6 * HOUR;
        let a = wariness_delay("machine-a", "c0ffee", window);
        assert_eq!(a, wariness_delay("machine-a\n", "c0ffee", window));
        assert!(a < window);
        // a thousand hosts spread over the window's quarters
        let mut quarters = [0u32; 4];
        for i in 0..1000 {
            let d = wariness_delay(&format!("machine-{i}"), "c0ffee", window);
            assert!(d < window);
            quarters[(d * 4 / window) as usize] += 1;
        }
        assert!(quarters.iter().all(|&q| q > 150), "{quarters:?}");
        // a host is not first at every release
        let releases: Vec<u64> = (0..20)
            .map(|r| wariness_delay("machine-a", &format!("commit-{r}"), window))
            .collect();
        assert!(releases.iter().any(|&d| d != releases[0]), "{releases:?}");
        assert_eq!(wariness_delay("machine-a", "c0ffee", 0), 0);
    }

    #[test]
    fn the_fleet_lock_id_hides_the_machine_id() {
        let id = fleet_lock_id("5f1c9d2e8b7a4c3f9e0d1a2b3c4d5e6f\n");
        assert_eq!(id.len(), 32);
        assert_eq!(id, fleet_lock_id("5f1c9d2e8b7a4c3f9e0d1a2b3c4d5e6f"));
        assert!(!id.contains("5f1c9d2e"));
        assert_ne!(id, fleet_lock_id("5f1c9d2e8b7a4c3f9e0d1a2b3c4d5e6e"));
    }

    #[test]
    fn config_errors_name_the_key() {
        for (text, wanted) in [
            ("strategy = \"periodic\"\n", "no [[updates.periodic.window]]"),
            ("strategy = \"fleet_lock\"\n", "base-url is not set"),
            (
                "strategy = \"fleet_lock\"\n[fleet-lock]\nbase-url = \"mirror:5000\"\n",
                "must start with http://",
            ),
            (
                "[fleet-lock]\nbase-url = \"http://m/\"\ngroup = \"a b\"\n",
                "not a group name",
            ),
            (
                "[[periodic.window]]\ndays = [\"Mon\"]\nstart-time = \"24:00\"\nlength-minutes = 5\n",
                "window[0].start-time \"24:00\"",
            ),
            (
                "[[periodic.window]]\ndays = [\"Mo\"]\nstart-time = \"01:00\"\nlength-minutes = 5\n",
                "\"Mo\" is not a day",
            ),
            (
                "[[periodic.window]]\ndays = [\"Mon\"]\nstart-time = \"01:00\"\nlength-minutes = 0\n",
                "length-minutes is 0",
            ),
            ("reboot-command = []\n", "reboot-command is empty"),
        ] {
            let c: UpdatesConfig = toml::from_str(text).unwrap();
            let err = c.validate().unwrap_err();
            assert!(err.contains(wanted), "{text}: {err}");
        }
        // Zincati's spelling and ours
        assert_eq!(
            cfg("strategy = \"fleet-lock\"\n[fleet-lock]\nbase-url = \"http://m/\"\n").strategy,
            Strategy::FleetLock
        );
        let d = cfg("");
        assert_eq!(d.strategy, Strategy::Immediate);
        assert_eq!(d.reboot_command, vec!["systemctl", "reboot"]);
    }
}
