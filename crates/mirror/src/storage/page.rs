//! Pages of sorted listings (`n`/`last` of `tags/list` and `_catalog`).

/// One page of a lexically sorted listing: the entries after `last`, at
/// most `n` of them, and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Entries follow the last one returned (the `Link` header's cue).
    pub more: bool,
}

impl<T: Clone> Page<T> {
    /// The page of a sorted slice: a binary search for `last`, then at most
    /// `n` entries, so the cost is the page's, not the listing's.
    pub fn of_sorted(sorted: &[T], last: Option<&str>, n: Option<usize>) -> Page<T>
    where
        T: AsRef<str>,
    {
        let start = match last {
            Some(l) => sorted.partition_point(|t| t.as_ref() <= l),
            None => 0,
        };
        let rest = &sorted[start..];
        let take = n.unwrap_or(rest.len()).min(rest.len());
        Page {
            items: rest[..take].to_vec(),
            more: take < rest.len(),
        }
    }
}

impl<T> Page<T> {
    /// The page of a sorted stream that already starts after `last`: its
    /// first `n` entries (`None` entries skipped), read only as far as the
    /// page needs.
    pub(crate) async fn of_stream<E>(
        entries: impl futures_util::Stream<Item = Result<Option<T>, E>>,
        n: Option<usize>,
    ) -> Result<Page<T>, E> {
        use futures_util::StreamExt;
        let want = n.unwrap_or(usize::MAX);
        let mut entries = std::pin::pin!(entries);
        let mut page = Page {
            items: Vec::new(),
            more: false,
        };
        while let Some(entry) = entries.next().await {
            let Some(entry) = entry? else { continue };
            if page.items.len() == want {
                page.more = true;
                break;
            }
            page.items.push(entry);
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn pages_follow_last_and_n() {
        let all: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let p = Page::of_sorted(&all, None, Some(2));
        assert_eq!((p.items, p.more), (vec!["a".into(), "b".into()], true));
        let p = Page::of_sorted(&all, Some("b"), Some(2));
        assert_eq!(p.items, ["c", "d"]);
        assert!(p.more);
        let p = Page::of_sorted(&all, Some("d"), Some(2));
        assert_eq!((p.items, p.more), (vec!["e".to_string()], false));
        // `last` need not be an entry: the page starts after where it would sort.
        let p = Page::of_sorted(&all, Some("bb"), None);
        assert_eq!((p.items.len(), p.more), (3, false));
        let p = Page::of_sorted(&all, None, Some(0));
        assert_eq!((p.items.len(), p.more), (0, true));
        let p = Page::of_sorted(&all, Some("z"), Some(3));
        assert_eq!((p.items.len(), p.more), (0, false));
    }
}
