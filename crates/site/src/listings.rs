//! What the listings show apart or leave out, set by whoever serves the
//! site beside other pages (the community portal, joined by corral-cli):
//! a namespace whose repositories are listed as their own group, and the
//! repositories left out of every listing (the home page, its search, the
//! catalog) while their tags and digests still pull and their own page
//! says why. The site knows nothing of who sets them.

use std::collections::BTreeMap;
use std::sync::RwLock;

/// The listing rules of one server; shared, and changed while it serves.
#[derive(Debug)]
pub struct Listings {
    state: RwLock<State>,
}

impl Default for Listings {
    fn default() -> Listings {
        Listings::new()
    }
}

#[derive(Debug, Default)]
struct State {
    /// `(namespace, group)`: repositories under `namespace/` are listed in
    /// `group`.
    apart: Option<(String, String)>,
    /// Repositories left out of the listings, with the word their page
    /// shows (`withdrawn`).
    unlisted: BTreeMap<String, String>,
}

impl Listings {
    /// Nothing apart, nothing left out.
    pub const fn new() -> Listings {
        Listings {
            state: RwLock::new(State {
                apart: None,
                unlisted: BTreeMap::new(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists the repositories under `namespace/` apart, as `group`.
    pub fn set_namespace(&self, namespace: &str, group: &str) {
        self.write().apart = Some((
            namespace.trim_end_matches('/').to_string(),
            group.to_string(),
        ));
    }

    /// The group of `repo` when it is in the namespace listed apart.
    pub fn group_apart(&self, repo: &str) -> Option<String> {
        let s = self.read();
        let (ns, group) = s.apart.as_ref()?;
        repo.strip_prefix(ns.as_str())
            .is_some_and(|r| r.starts_with('/'))
            .then(|| group.clone())
    }

    /// The group listed apart, if any.
    pub fn group(&self) -> Option<String> {
        self.read().apart.as_ref().map(|(_, g)| g.clone())
    }

    /// Leaves `repo` out of the listings; its page says `why`.
    pub fn unlist(&self, repo: &str, why: &str) {
        self.write()
            .unlisted
            .insert(repo.to_string(), why.to_string());
    }

    /// Lists `repo` again.
    pub fn relist(&self, repo: &str) {
        self.write().unlisted.remove(repo);
    }

    /// Makes exactly these repositories the unlisted ones.
    pub fn replace_unlisted(&self, repos: impl IntoIterator<Item = (String, String)>) {
        self.write().unlisted = repos.into_iter().collect();
    }

    /// Why `repo` is left out of the listings, `None` when it is listed.
    pub fn unlisted(&self, repo: &str) -> Option<String> {
        self.read().unlisted.get(repo).cloned()
    }

    pub fn is_listed(&self, repo: &str) -> bool {
        !self.read().unlisted.contains_key(repo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_listed_apart_and_unlisted_repositories_are_named() {
        let l = Listings::default();
        assert_eq!(l.group_apart("community/hello"), None);
        l.set_namespace("community", "Community templates");
        assert_eq!(
            l.group_apart("community/hello").as_deref(),
            Some("Community templates")
        );
        assert_eq!(l.group_apart("communityx/hello"), None);
        assert_eq!(l.group_apart("library/community"), None);
        assert!(l.is_listed("community/hello"));
        l.unlist("community/hello", "withdrawn");
        assert!(!l.is_listed("community/hello"));
        assert_eq!(l.unlisted("community/hello").as_deref(), Some("withdrawn"));
        l.relist("community/hello");
        assert!(l.is_listed("community/hello"));
        l.replace_unlisted([("community/a".into(), "withdrawn".into())]);
        assert!(!l.is_listed("community/a") && l.is_listed("community/hello"));
    }
}
