//! The review rules as pure functions over [`crate::model`] values: who may
//! submit, review and withdraw, when an approval counts and when a template
//! is published. The store ([`crate::store`]) calls them inside the
//! transaction that makes the change, so a refused change writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    Check, CheckKind, CheckStatus, Review, Revision, Template, TemplateState, Verdict,
};

/// The approvals a revision needs unless configured otherwise.
pub const DEFAULT_APPROVALS: u32 = 2;

/// Who reviews and withdraws, and how many approvals publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// Accounts that may review (never their own templates).
    pub reviewers: BTreeSet<String>,
    /// Accounts that may withdraw a published template.
    pub maintainers: BTreeSet<String>,
    /// Approvals on the current revision that publish it (at least 1).
    pub approvals_needed: u32,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        ReviewPolicy {
            reviewers: BTreeSet::new(),
            maintainers: BTreeSet::new(),
            approvals_needed: DEFAULT_APPROVALS,
        }
    }
}

/// A change the rules refuse, saying which rule and to whom.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    #[error("{reviewer} is the author of {template} and cannot review it")]
    OwnTemplate { template: String, reviewer: String },
    #[error("{0} is not a reviewer of this portal")]
    NotAReviewer(String),
    #[error("{0} is not a maintainer of this portal")]
    NotAMaintainer(String),
    #[error("{template} is by {author}; only its author submits revisions")]
    NotTheAuthor {
        template: String,
        author: String,
        who: String,
    },
    #[error("revision {revision} of {template} is not its current revision ({current})")]
    NotCurrentRevision {
        template: String,
        revision: u32,
        current: u32,
    },
    #[error("revision {revision} of {template} is already published")]
    AlreadyPublished { template: String, revision: u32 },
    #[error("revision {revision} of {template} cannot be approved: its {check} check is {status}")]
    ChecksNotPassed {
        template: String,
        revision: u32,
        check: CheckKind,
        status: CheckStatus,
    },
    #[error("the {check} check of revision {revision} of {template} is already {status}")]
    CheckFinal {
        template: String,
        revision: u32,
        check: CheckKind,
        status: CheckStatus,
    },
    #[error("{0} is withdrawn")]
    Withdrawn(String),
    #[error("{0} is not published")]
    NotPublished(String),
}

/// The number the next revision of `name` gets when `author` submits it:
/// 1 for a new template; the next number when the author submits again
/// (earlier revisions and their reviews stay as history).
pub fn next_revision(existing: Option<&Template>, author: &str) -> Result<u32, RuleError> {
    let Some(t) = existing else {
        return Ok(1);
    };
    if t.author != author {
        return Err(RuleError::NotTheAuthor {
            template: t.name.clone(),
            author: t.author.clone(),
            who: author.to_string(),
        });
    }
    if t.state == TemplateState::Withdrawn {
        return Err(RuleError::Withdrawn(t.name.clone()));
    }
    Ok(t.current_revision + 1)
}

/// Whether `reviewer` may give `verdict` on `revision` of `template`.
///
/// The author never reviews their own template; only configured reviewers
/// review; only the current revision is reviewed; an approval needs every
/// check passed (a pending or failed check refuses it), while a request for
/// changes is always possible.
pub fn check_review(
    policy: &ReviewPolicy,
    template: &Template,
    revision: &Revision,
    reviewer: &str,
    verdict: Verdict,
) -> Result<(), RuleError> {
    if template.state == TemplateState::Withdrawn {
        return Err(RuleError::Withdrawn(template.name.clone()));
    }
    if reviewer == template.author {
        return Err(RuleError::OwnTemplate {
            template: template.name.clone(),
            reviewer: reviewer.to_string(),
        });
    }
    if !policy.reviewers.contains(reviewer) {
        return Err(RuleError::NotAReviewer(reviewer.to_string()));
    }
    if revision.number != template.current_revision {
        return Err(RuleError::NotCurrentRevision {
            template: template.name.clone(),
            revision: revision.number,
            current: template.current_revision,
        });
    }
    if template.published_revision == Some(revision.number) {
        return Err(RuleError::AlreadyPublished {
            template: template.name.clone(),
            revision: revision.number,
        });
    }
    if verdict == Verdict::Approve {
        for kind in CheckKind::ALL {
            let status = revision.check(kind).status;
            if status != CheckStatus::Passed {
                return Err(RuleError::ChecksNotPassed {
                    template: template.name.clone(),
                    revision: revision.number,
                    check: kind,
                    status,
                });
            }
        }
    }
    Ok(())
}

/// Whether a check's result may be recorded: a result is final, so only a
/// pending check takes one (running it again means a new revision).
pub fn check_record(
    template: &str,
    revision: u32,
    kind: CheckKind,
    current: &Check,
) -> Result<(), RuleError> {
    if current.status != CheckStatus::Pending {
        return Err(RuleError::CheckFinal {
            template: template.to_string(),
            revision,
            check: kind,
            status: current.status,
        });
    }
    Ok(())
}

/// The reviewers whose latest verdict on `revision` is an approval (a
/// reviewer who approved and then requested changes does not count). The
/// author never counts. `reviews` may hold any revisions' reviews, in the
/// order they were given.
pub fn approvals(author: &str, revision: u32, reviews: &[Review]) -> BTreeSet<String> {
    let mut latest: BTreeMap<&str, Verdict> = BTreeMap::new();
    for r in reviews.iter().filter(|r| r.revision == revision) {
        latest.insert(&r.reviewer, r.verdict);
    }
    latest
        .into_iter()
        .filter(|(who, v)| *who != author && *v == Verdict::Approve)
        .map(|(who, _)| who.to_string())
        .collect()
}

/// The revision that becomes published after a review, if the current
/// revision now has the approvals the policy asks for.
pub fn to_publish(policy: &ReviewPolicy, template: &Template, reviews: &[Review]) -> Option<u32> {
    let current = template.current_revision;
    if template.state == TemplateState::Withdrawn || template.published_revision == Some(current) {
        return None;
    }
    let n = approvals(&template.author, current, reviews).len() as u32;
    (n >= policy.approvals_needed.max(1)).then_some(current)
}

/// Whether `who` may withdraw `template`: maintainers withdraw published
/// templates (they stay pullable by digest and leave listings).
pub fn check_withdraw(
    policy: &ReviewPolicy,
    template: &Template,
    who: &str,
) -> Result<(), RuleError> {
    if !policy.maintainers.contains(who) {
        return Err(RuleError::NotAMaintainer(who.to_string()));
    }
    match template.state {
        TemplateState::Published => Ok(()),
        TemplateState::Withdrawn => Err(RuleError::Withdrawn(template.name.clone())),
        TemplateState::UnderReview => Err(RuleError::NotPublished(template.name.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TemplateKind;

    fn policy() -> ReviewPolicy {
        ReviewPolicy {
            reviewers: ["rita", "rob", "ann"].map(String::from).into(),
            maintainers: ["max"].map(String::from).into(),
            ..ReviewPolicy::default()
        }
    }

    fn template(state: TemplateState, current: u32, published: Option<u32>) -> Template {
        Template {
            name: "nginx-plus".into(),
            kind: TemplateKind::DockerfileFolder,
            author: "ann".into(),
            state,
            current_revision: current,
            published_revision: published,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn revision(number: u32, checks: [CheckStatus; 3]) -> Revision {
        let c = |status| Check { status, log: None };
        Revision {
            template: "nginx-plus".into(),
            number,
            archive_digest: format!("sha256:{}", "a".repeat(64)),
            lint: c(checks[0]),
            build: c(checks[1]),
            test: c(checks[2]),
            created_at: 0,
        }
    }

    const PASSED: [CheckStatus; 3] = [CheckStatus::Passed; 3];

    fn review(reviewer: &str, revision: u32, verdict: Verdict) -> Review {
        Review {
            id: 0,
            template: "nginx-plus".into(),
            revision,
            reviewer: reviewer.into(),
            verdict,
            comment: String::new(),
            created_at: 0,
        }
    }

    #[test]
    fn the_author_cannot_review_their_own_template() {
        let t = template(TemplateState::UnderReview, 1, None);
        let r = revision(1, PASSED);
        // ann is a configured reviewer, and still cannot review her own.
        for v in [Verdict::Approve, Verdict::RequestChanges] {
            assert_eq!(
                check_review(&policy(), &t, &r, "ann", v),
                Err(RuleError::OwnTemplate {
                    template: "nginx-plus".into(),
                    reviewer: "ann".into()
                })
            );
        }
        assert_eq!(
            check_review(&policy(), &t, &r, "rita", Verdict::Approve),
            Ok(())
        );
    }

    #[test]
    fn only_configured_reviewers_review() {
        let t = template(TemplateState::UnderReview, 1, None);
        let r = revision(1, PASSED);
        assert_eq!(
            check_review(&policy(), &t, &r, "mallory", Verdict::Approve),
            Err(RuleError::NotAReviewer("mallory".into()))
        );
        // Maintainers are not reviewers unless configured as such.
        assert_eq!(
            check_review(&policy(), &t, &r, "max", Verdict::RequestChanges),
            Err(RuleError::NotAReviewer("max".into()))
        );
    }

    #[test]
    fn a_failed_or_pending_check_refuses_approval_but_not_a_request_for_changes() {
        let t = template(TemplateState::UnderReview, 1, None);
        use CheckStatus::*;
        for (checks, bad, status) in [
            ([Failed, Passed, Passed], CheckKind::Lint, Failed),
            ([Passed, Pending, Passed], CheckKind::Build, Pending),
            ([Passed, Passed, Failed], CheckKind::Test, Failed),
            ([Passed, Passed, Pending], CheckKind::Test, Pending),
        ] {
            let r = revision(1, checks);
            assert_eq!(
                check_review(&policy(), &t, &r, "rita", Verdict::Approve),
                Err(RuleError::ChecksNotPassed {
                    template: "nginx-plus".into(),
                    revision: 1,
                    check: bad,
                    status
                })
            );
            assert_eq!(
                check_review(&policy(), &t, &r, "rita", Verdict::RequestChanges),
                Ok(())
            );
        }
    }

    #[test]
    fn only_the_current_revision_is_reviewed() {
        let t = template(TemplateState::UnderReview, 2, None);
        assert!(matches!(
            check_review(
                &policy(),
                &t,
                &revision(1, PASSED),
                "rita",
                Verdict::Approve
            ),
            Err(RuleError::NotCurrentRevision {
                revision: 1,
                current: 2,
                ..
            })
        ));
        let published = template(TemplateState::Published, 2, Some(2));
        assert!(matches!(
            check_review(
                &policy(),
                &published,
                &revision(2, PASSED),
                "rita",
                Verdict::Approve
            ),
            Err(RuleError::AlreadyPublished { revision: 2, .. })
        ));
        let withdrawn = template(TemplateState::Withdrawn, 2, Some(2));
        assert_eq!(
            check_review(
                &policy(),
                &withdrawn,
                &revision(2, PASSED),
                "rita",
                Verdict::RequestChanges
            ),
            Err(RuleError::Withdrawn("nginx-plus".into()))
        );
    }

    #[test]
    fn n_approvals_on_the_current_revision_publish_it() {
        let t = template(TemplateState::UnderReview, 1, None);
        let mut reviews = vec![review("rita", 1, Verdict::Approve)];
        assert_eq!(to_publish(&policy(), &t, &reviews), None, "one of two");
        // The same reviewer approving twice is one approval.
        reviews.push(review("rita", 1, Verdict::Approve));
        assert_eq!(to_publish(&policy(), &t, &reviews), None);
        reviews.push(review("rob", 1, Verdict::Approve));
        assert_eq!(to_publish(&policy(), &t, &reviews), Some(1));
        // Configurable: three needed.
        let three = ReviewPolicy {
            approvals_needed: 3,
            ..policy()
        };
        assert_eq!(to_publish(&three, &t, &reviews), None);
        // One is the least: zero is read as one.
        let zero = ReviewPolicy {
            approvals_needed: 0,
            ..policy()
        };
        assert_eq!(to_publish(&zero, &t, &[]), None);
        assert_eq!(to_publish(&zero, &t, &reviews[..1]), Some(1));
    }

    #[test]
    fn a_later_request_for_changes_takes_an_approval_back() {
        let reviews = [
            review("rita", 1, Verdict::Approve),
            review("rob", 1, Verdict::Approve),
            review("rob", 1, Verdict::RequestChanges),
        ];
        assert_eq!(approvals("ann", 1, &reviews), ["rita".to_string()].into());
        let t = template(TemplateState::UnderReview, 1, None);
        assert_eq!(to_publish(&policy(), &t, &reviews), None);
    }

    #[test]
    fn a_new_revision_resets_approvals_and_keeps_history() {
        let one = template(TemplateState::UnderReview, 1, None);
        assert_eq!(next_revision(None, "ann"), Ok(1));
        assert_eq!(next_revision(Some(&one), "ann"), Ok(2));
        let two = template(TemplateState::UnderReview, 2, None);
        let reviews = [
            review("rita", 1, Verdict::Approve),
            review("rob", 1, Verdict::Approve),
        ];
        // Revision 1's approvals are still there, and count for nothing now.
        assert_eq!(approvals("ann", 1, &reviews).len(), 2);
        assert!(approvals("ann", 2, &reviews).is_empty());
        assert_eq!(to_publish(&policy(), &two, &reviews), None);
        // An update of a published template: the published revision stays
        // until the new one has its own approvals.
        let update = template(TemplateState::Published, 3, Some(2));
        assert!(update.update_under_review() && update.listed());
        let mut reviews = vec![
            review("rita", 2, Verdict::Approve),
            review("rob", 2, Verdict::Approve),
        ];
        assert_eq!(to_publish(&policy(), &update, &reviews), None);
        reviews.extend([
            review("rita", 3, Verdict::Approve),
            review("rob", 3, Verdict::Approve),
        ]);
        assert_eq!(to_publish(&policy(), &update, &reviews), Some(3));
    }

    #[test]
    fn only_the_author_submits_revisions_and_never_to_a_withdrawn_template() {
        let t = template(TemplateState::Published, 1, Some(1));
        assert!(matches!(
            next_revision(Some(&t), "rita"),
            Err(RuleError::NotTheAuthor { .. })
        ));
        let w = template(TemplateState::Withdrawn, 1, Some(1));
        assert_eq!(
            next_revision(Some(&w), "ann"),
            Err(RuleError::Withdrawn("nginx-plus".into()))
        );
    }

    #[test]
    fn maintainers_withdraw_published_templates() {
        let p = template(TemplateState::Published, 1, Some(1));
        assert_eq!(check_withdraw(&policy(), &p, "max"), Ok(()));
        assert_eq!(
            check_withdraw(&policy(), &p, "rita"),
            Err(RuleError::NotAMaintainer("rita".into()))
        );
        let u = template(TemplateState::UnderReview, 1, None);
        assert_eq!(
            check_withdraw(&policy(), &u, "max"),
            Err(RuleError::NotPublished("nginx-plus".into()))
        );
        let w = template(TemplateState::Withdrawn, 1, Some(1));
        assert_eq!(
            check_withdraw(&policy(), &w, "max"),
            Err(RuleError::Withdrawn("nginx-plus".into()))
        );
        assert!(!w.listed());
    }

    #[test]
    fn a_check_result_is_final() {
        assert_eq!(
            check_record("t", 1, CheckKind::Build, &Check::pending()),
            Ok(())
        );
        let done = Check {
            status: CheckStatus::Failed,
            log: Some("logs/1".into()),
        };
        assert!(matches!(
            check_record("t", 1, CheckKind::Build, &done),
            Err(RuleError::CheckFinal {
                status: CheckStatus::Failed,
                ..
            })
        ));
    }
}
