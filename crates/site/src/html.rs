//! HTML pieces every page shares: escaping, the page frame, sizes, digests
//! and dates.

use std::fmt::Write as _;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes a query value or path segment (repository names keep
/// their `/`).
pub fn url_encode(s: &str, keep_slash: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b'/' if keep_slash => o.push('/'),
            _ => {
                let _ = write!(o, "%{b:02X}");
            }
        }
    }
    o
}

/// `1.5 MiB`.
pub fn human_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// `sha256:0123456789ab`: the algorithm and 12 hex digits.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => d.chars().take(12).collect(),
    }
}

/// A digest shown short, the whole one in the title and in a copy button
/// (the button works with the page's script; without it the full digest is
/// on hover and in the JSON twin).
pub fn digest(d: &str) -> String {
    let e = escape(d);
    format!(
        "<code class=\"digest\" title=\"{e}\">{}</code> <button type=\"button\" class=\"copy\" data-copy=\"{e}\" aria-label=\"copy the full digest\" hidden>copy</button>",
        escape(&short_digest(d))
    )
}

/// `s` as one shell word: as is when it holds only characters no shell
/// reads specially, else single-quoted.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.,:/@%+=".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A command line in a box, with a copy button.
pub fn command(cmd: &str) -> String {
    let e = escape(cmd);
    format!("<div class=\"cmd\"><code>{e}</code><button type=\"button\" class=\"copy\" data-copy=\"{e}\" aria-label=\"copy the command\" hidden>copy</button></div>")
}

/// Parses RFC 3339 (`2026-01-02T03:04:05Z`, `…05.123+02:00`), the forms
/// image configs and stream files carry.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let date = Date::from_calendar_date(
        num(0..4)? as i32,
        Month::try_from(num(5..7)? as u8).ok()?,
        num(8..10)? as u8,
    )
    .ok()?;
    let time = Time::from_hms(num(11..13)? as u8, num(14..16)? as u8, num(17..19)? as u8).ok()?;
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0i64,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let utc = PrimitiveDateTime::new(date, time).assume_utc();
    Some(utc - time::Duration::seconds(offset))
}

/// `3 days ago`, from `then` to `now`.
pub fn relative(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - then).whole_seconds();
    if secs < 0 {
        return "in the future".to_string();
    }
    let (n, unit) = match secs {
        0..=59 => return "just now".to_string(),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        86_400..=2_591_999 => (secs / 86_400, "day"),
        2_592_000..=31_535_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A date shown relative to `now`, exact (UTC) on hover; the text as given
/// when it does not parse.
pub fn date(s: &str, now: OffsetDateTime) -> String {
    match parse_rfc3339(s) {
        Some(t) => {
            let exact = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            format!(
                "<time datetime=\"{}\" title=\"{exact}\">{}</time>",
                escape(s),
                relative(t, now)
            )
        }
        None => escape(s),
    }
}

/// Links added to every page's navigation, after the site's own.
static EXTRA_NAV: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Adds `(label, href)` links to every page's navigation: how a server
/// that serves other pages beside the site (the community portal) links
/// them without the site knowing them. Set once per process, before
/// serving; `false` when already set.
pub fn set_extra_nav(links: Vec<(String, String)>) -> bool {
    EXTRA_NAV.set(links).is_ok()
}

fn nav(extra: &[(String, String)]) -> String {
    let mut o = String::from(
        "<a class=\"brand\" href=\"/\">corral</a> \
<a href=\"/#base-images\">Images</a> <a href=\"/atomic-host\">Atomic Host</a> \
<a href=\"/downloads\">Disk images</a> <a href=\"/catalog\">All tags</a>",
    );
    for (label, href) in extra {
        let _ = write!(o, " <a href=\"{}\">{}</a>", escape(href), escape(label));
    }
    o
}

/// The page frame: head, navigation, `body`, and a link to the JSON twin.
pub fn page(title: &str, json_href: &str, body: &str) -> String {
    let t = escape(title);
    let j = escape(json_href);
    let nav = nav(EXTRA_NAV.get().map_or(&[][..], Vec::as_slice));
    let mut o = String::with_capacity(body.len() + 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · corral</title>\
<link rel=\"stylesheet\" href=\"/site/site.css\">\
<link rel=\"alternate\" type=\"application/json\" href=\"{j}\">\
<script src=\"/site/site.js\" defer></script></head>\n<body>\
<header><nav aria-label=\"site\">{nav}</nav></header>\n\
<main>\n{body}</main>\n<footer><p><a href=\"{j}\">This page as JSON</a></p></footer>\n</body></html>\n"
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(url_encode("a/b c&d", true), "a/b%20c%26d");
        assert_eq!(url_encode("a/b", false), "a%2Fb");
    }

    #[test]
    fn extra_navigation_links_follow_the_sites_own_escaped() {
        assert!(!nav(&[]).contains("community"));
        let n = nav(&[("Community <3".into(), "/community?a=1&b=\"".into())]);
        assert!(
            n.ends_with("All tags</a> <a href=\"/community?a=1&amp;b=&quot;\">Community &lt;3</a>"),
            "{n}"
        );
        // The page frame carries them.
        let page = page("t", "/x.json", "");
        assert!(page.contains(&format!("<nav aria-label=\"site\">{}</nav>", nav(&[]))));
    }

    #[test]
    fn sizes_and_digests() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&d), "sha256:abababababab");
        // Text from a stream file need not be hex, nor ASCII.
        assert_eq!(short_digest("ééééééééééééé"), "éééééééééééé");
        assert_eq!(short_digest("x:ééééééééééééé"), "x:éééééééééééé");
        let html = digest(&d);
        assert!(html.contains(&format!("title=\"{d}\"")));
        assert!(html.contains(">sha256:abababababab</code>"));
    }

    #[test]
    fn dates_are_relative_with_the_exact_time_on_hover() {
        let now = parse_rfc3339("2026-03-10T12:00:00Z").unwrap();
        let t = parse_rfc3339("2026-03-07T11:00:00.123456789+01:00").unwrap();
        assert_eq!(relative(t, now), "3 days ago");
        let html = date("2026-03-10T10:00:00Z", now);
        assert!(html.contains(">2 hours ago</time>"), "{html}");
        assert!(html.contains("title=\"2026-03-10 10:00:00 UTC\""), "{html}");
        assert_eq!(date("<b>", now), "&lt;b&gt;");
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
