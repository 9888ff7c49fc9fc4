//! Markdown (help.md, descriptions) to HTML that cannot carry script:
//! raw HTML is dropped, images become their alt text, and links keep only
//! `http:`, `https:`, `mailto:` and relative destinations.

use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

/// Whether a link destination is safe to follow from the site.
pub fn safe_url(url: &str) -> bool {
    let lower: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    match lower.find(':') {
        // No scheme: relative (a `:` after `/`, `?` or `#` is not a scheme).
        None => true,
        Some(i) if lower[..i].contains(['/', '?', '#']) => true,
        Some(_) => {
            lower.starts_with("http:")
                || lower.starts_with("https:")
                || lower.starts_with("mailto:")
        }
    }
}

/// Renders `md` safely.
pub fn render(md: &str) -> String {
    let mut dropped_links = Vec::new();
    let mut in_image = 0usize;
    let events = Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH)
        .filter_map(|e| match e {
            Event::Html(_) | Event::InlineHtml(_) => None,
            Event::Start(Tag::Image { .. }) => {
                in_image += 1;
                None
            }
            Event::End(TagEnd::Image) => {
                in_image = in_image.saturating_sub(1);
                None
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let ok = safe_url(&dest_url);
                dropped_links.push(!ok);
                ok.then_some(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }))
            }
            Event::End(TagEnd::Link) => {
                if dropped_links.pop().unwrap_or(false) {
                    None
                } else {
                    Some(Event::End(TagEnd::Link))
                }
            }
            // Text (an image's alt text too) is escaped by the renderer.
            other => Some(other),
        });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_are_dropped() {
        let html = render(
            "# Title\n\n<script>alert(1)</script>\n\ntext <img src=x onerror=alert(2)> more\n\n<!-- a comment -->\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("<!--"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("text  more"), "{html}");
    }

    #[test]
    fn only_safe_links_survive() {
        let html = render(
            "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c]( java\tscript:x) [d](data:text/html,x) [e](https://example.org/x) [f](/repositories/x) [g](vbscript:x)",
        );
        assert!(!html.to_lowercase().contains("href=\"java"), "{html}");
        assert!(!html.to_lowercase().contains("href=\"vbscript"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.org/x\">e</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"/repositories/x\">f</a>"), "{html}");
        // The text of a dropped link stays, without the link.
        assert!(
            html.contains(">a<") || html.contains(" a ") || html.contains("<p>a "),
            "{html}"
        );
        assert!(!safe_url("javascript:x"));
        assert!(safe_url("a/b:c"));
        assert!(safe_url("#top"));
    }

    #[test]
    fn attribute_breakouts_are_escaped() {
        let html = render("[x](https://e.org/\"onmouseover=\"alert(1) \"t\\\"itle\")\n\n`<b>`");
        assert!(!html.contains("\"onmouseover"), "{html}");
        assert!(html.contains("<code>&lt;b&gt;</code>"), "{html}");
        let img = render("![alt & text](javascript:x)");
        assert!(!img.contains("javascript"), "{img}");
        assert!(img.contains("alt &amp; text"), "{img}");
    }
}
