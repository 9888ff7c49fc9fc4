//! The store on both databases: the same bodies run on SQLite and on a
//! real PostgreSQL server started by the test.

mod support;

use corral_portal::accounts::Htpasswd;
use corral_portal::db::{self, migrations, DbError, Value};
use corral_portal::model::{CheckKind, CheckStatus, TemplateKind, TemplateState, Verdict};
use corral_portal::rules::{ReviewPolicy, RuleError};
use corral_portal::store::{AccountSource, Store, StoreError};
use support::{Backend, Body};

const T0: i64 = 1_760_000_000;

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn policy() -> ReviewPolicy {
    ReviewPolicy {
        reviewers: ["rita", "rob", "ann"].map(String::from).into(),
        maintainers: ["max"].map(String::from).into(),
        ..ReviewPolicy::default()
    }
}

fn open(b: &Backend<'_>) -> Store {
    Store::open(&b.database(), policy())
        .unwrap()
        .with_bcrypt_cost(4)
}

fn pass_all(s: &mut Store, template: &str, revision: u32) {
    for kind in CheckKind::ALL {
        let log = format!("logs/{template}/{revision}/{kind}.log");
        s.record_check(
            "corral",
            template,
            revision,
            kind,
            CheckStatus::Passed,
            Some(&log),
            T0,
        )
        .unwrap();
    }
}

fn rule(e: StoreError) -> RuleError {
    match e {
        StoreError::Rule(r) => r,
        other => panic!("expected a rule error, got {other}"),
    }
}

/// Every rule, through the store: refused changes write nothing, accepted
/// ones write their audit line.
fn the_review_rules(b: &mut Backend<'_>) {
    let mut s = open(b);
    let r1 = s
        .submit(
            "ann",
            "hello",
            TemplateKind::DockerfileFolder,
            &digest(1),
            T0,
        )
        .unwrap();
    assert_eq!(r1.number, 1);
    let t = s.template("hello").unwrap().unwrap();
    assert_eq!(
        (t.state, t.current_revision, t.published_revision),
        (TemplateState::UnderReview, 1, None)
    );
    assert!(s.listed().unwrap().is_empty());
    assert_eq!(s.under_review().unwrap().len(), 1);

    let audit_len = |s: &mut Store| s.audit_log().unwrap().len();
    let before = audit_len(&mut s);

    // The author cannot review their own template (ann is a reviewer).
    let e = rule(
        s.review("ann", "hello", 1, Verdict::RequestChanges, "", T0)
            .unwrap_err(),
    );
    assert!(matches!(e, RuleError::OwnTemplate { .. }), "{e}");
    // Only configured reviewers review.
    let e = rule(
        s.review("mallory", "hello", 1, Verdict::Approve, "", T0)
            .unwrap_err(),
    );
    assert_eq!(e, RuleError::NotAReviewer("mallory".into()));
    // Pending checks refuse an approval.
    let e = rule(
        s.review("rita", "hello", 1, Verdict::Approve, "", T0)
            .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            RuleError::ChecksNotPassed {
                status: CheckStatus::Pending,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        s.reviews("hello").unwrap().is_empty(),
        "a refused review is not stored"
    );
    assert_eq!(audit_len(&mut s), before, "a refused change is not audited");

    // A failed check refuses it too; a request for changes is fine.
    s.record_check(
        "corral",
        "hello",
        1,
        CheckKind::Lint,
        CheckStatus::Passed,
        Some("l1"),
        T0,
    )
    .unwrap();
    s.record_check(
        "corral",
        "hello",
        1,
        CheckKind::Build,
        CheckStatus::Passed,
        Some("b1"),
        T0,
    )
    .unwrap();
    s.record_check(
        "corral",
        "hello",
        1,
        CheckKind::Test,
        CheckStatus::Failed,
        Some("t1"),
        T0,
    )
    .unwrap();
    let e = rule(
        s.review("rita", "hello", 1, Verdict::Approve, "", T0)
            .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            RuleError::ChecksNotPassed {
                check: CheckKind::Test,
                status: CheckStatus::Failed,
                ..
            }
        ),
        "{e}"
    );
    // Results are final: the failed test cannot be turned into a pass.
    let e = rule(
        s.record_check(
            "corral",
            "hello",
            1,
            CheckKind::Test,
            CheckStatus::Passed,
            None,
            T0,
        )
        .unwrap_err(),
    );
    assert!(matches!(e, RuleError::CheckFinal { .. }), "{e}");
    let out = s
        .review(
            "rita",
            "hello",
            1,
            Verdict::RequestChanges,
            "the test fails",
            T0 + 1,
        )
        .unwrap();
    assert_eq!(out.published, None);

    // Somebody else cannot submit a revision of ann's template.
    let e = rule(
        s.submit(
            "rob",
            "hello",
            TemplateKind::DockerfileFolder,
            &digest(9),
            T0,
        )
        .unwrap_err(),
    );
    assert!(matches!(e, RuleError::NotTheAuthor { .. }), "{e}");
    // Nor change its kind.
    assert!(matches!(
        s.submit("ann", "hello", TemplateKind::TreeRecipe, &digest(2), T0),
        Err(StoreError::KindChanged { .. })
    ));

    // Revision 2: approvals start from none, revision 1 stays.
    let r2 = s
        .submit(
            "ann",
            "hello",
            TemplateKind::DockerfileFolder,
            &digest(2),
            T0 + 10,
        )
        .unwrap();
    assert_eq!(r2.number, 2);
    let e = rule(
        s.review("rob", "hello", 1, Verdict::RequestChanges, "", T0)
            .unwrap_err(),
    );
    assert!(
        matches!(
            e,
            RuleError::NotCurrentRevision {
                revision: 1,
                current: 2,
                ..
            }
        ),
        "{e}"
    );
    pass_all(&mut s, "hello", 2);
    let out = s
        .review("rita", "hello", 2, Verdict::Approve, "fixed", T0 + 20)
        .unwrap();
    assert_eq!(out.published, None, "one approval of two");
    // A second approval by the same reviewer is still one.
    let out = s
        .review("rita", "hello", 2, Verdict::Approve, "again", T0 + 21)
        .unwrap();
    assert_eq!(out.published, None);
    assert_eq!(
        s.template("hello").unwrap().unwrap().state,
        TemplateState::UnderReview
    );
    let out = s
        .review("rob", "hello", 2, Verdict::Approve, "", T0 + 30)
        .unwrap();
    assert_eq!(out.published, Some(2), "two approvals publish");
    let t = s.template("hello").unwrap().unwrap();
    assert_eq!(
        (t.state, t.published_revision),
        (TemplateState::Published, Some(2))
    );
    assert_eq!(s.listed().unwrap(), vec![t.clone()]);
    assert_eq!(s.revisions("hello").unwrap().len(), 2, "history kept");
    assert_eq!(
        s.revision("hello", 1).unwrap().unwrap().test.status,
        CheckStatus::Failed
    );
    assert_eq!(s.reviews("hello").unwrap().len(), 4);
    // Once published, the revision takes no more reviews.
    let e = rule(
        s.review("rita", "hello", 2, Verdict::Approve, "", T0)
            .unwrap_err(),
    );
    assert!(
        matches!(e, RuleError::AlreadyPublished { revision: 2, .. }),
        "{e}"
    );

    // Withdrawal: maintainers only, published only.
    let e = rule(s.withdraw("rita", "hello", "no", T0 + 40).unwrap_err());
    assert_eq!(e, RuleError::NotAMaintainer("rita".into()));
    s.submit("ann", "other", TemplateKind::TreeRecipe, &digest(3), T0)
        .unwrap();
    let e = rule(s.withdraw("max", "other", "", T0).unwrap_err());
    assert_eq!(e, RuleError::NotPublished("other".into()));
    s.withdraw("max", "hello", "ships a vulnerable openssl", T0 + 50)
        .unwrap();
    let t = s.template("hello").unwrap().unwrap();
    assert_eq!(t.state, TemplateState::Withdrawn);
    assert!(
        s.listed().unwrap().is_empty(),
        "a withdrawn template leaves listings"
    );
    let (bt, br) = s
        .by_digest(&digest(2))
        .unwrap()
        .expect("still found by digest");
    assert_eq!(
        (bt.name.as_str(), bt.state, br.number),
        ("hello", TemplateState::Withdrawn, 2)
    );
    let e = rule(
        s.submit(
            "ann",
            "hello",
            TemplateKind::DockerfileFolder,
            &digest(4),
            T0,
        )
        .unwrap_err(),
    );
    assert_eq!(e, RuleError::Withdrawn("hello".into()));

    // The audit log: every change, in order, with who and when.
    let log: Vec<(String, String, Option<u32>)> = s
        .audit_log()
        .unwrap()
        .into_iter()
        .filter(|a| a.template.as_deref() == Some("hello"))
        .map(|a| (a.actor, a.action, a.revision))
        .collect();
    let want: Vec<(&str, &str, Option<u32>)> = vec![
        ("ann", "submitted", Some(1)),
        ("corral", "check", Some(1)),
        ("corral", "check", Some(1)),
        ("corral", "check", Some(1)),
        ("rita", "review", Some(1)),
        ("ann", "submitted", Some(2)),
        ("corral", "check", Some(2)),
        ("corral", "check", Some(2)),
        ("corral", "check", Some(2)),
        ("rita", "review", Some(2)),
        ("rita", "review", Some(2)),
        ("rob", "review", Some(2)),
        ("rob", "published", Some(2)),
        ("max", "withdrawn", Some(2)),
    ];
    let want: Vec<_> = want
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
        .collect();
    assert_eq!(log, want);
    let published = s
        .audit_log()
        .unwrap()
        .into_iter()
        .find(|a| a.action == "published")
        .unwrap();
    assert_eq!(
        (published.at, published.detail.as_str()),
        (T0 + 30, "approved by rita, rob")
    );
}

/// N is configurable: with three, two approvals do not publish.
fn approvals_are_configurable(b: &mut Backend<'_>) {
    let three = ReviewPolicy {
        approvals_needed: 3,
        ..policy()
    };
    let mut s = Store::open(&b.database(), three).unwrap();
    s.submit(
        "max",
        "three",
        TemplateKind::DockerfileFolder,
        &digest(1),
        T0,
    )
    .unwrap();
    pass_all(&mut s, "three", 1);
    for (who, want) in [("rita", None), ("rob", None), ("ann", Some(1))] {
        let out = s.review(who, "three", 1, Verdict::Approve, "", T0).unwrap();
        assert_eq!(out.published, want, "after {who}");
    }
}

/// Accounts: bcrypt for portal accounts, the mirror's htpasswd users sign
/// in as they are and their names cannot be taken.
fn accounts_and_htpasswd(b: &mut Backend<'_>) {
    let mut s = open(b);
    let h = Htpasswd::parse(&format!(
        "mirror-admin:{}\n",
        bcrypt::hash("admin pw 123", 4).unwrap()
    ));
    let a = s
        .create_account("alice", "alice's long password", &h, T0)
        .unwrap();
    assert!(a.password_hash.starts_with("$2b$04$"));
    assert!(matches!(
        s.create_account("alice", "another long password", &h, T0),
        Err(StoreError::AccountExists(_))
    ));
    assert!(matches!(
        s.create_account("mirror-admin", "squatting the name", &h, T0),
        Err(StoreError::AccountExists(_))
    ));
    assert!(matches!(
        s.create_account("bob", "short", &h, T0),
        Err(StoreError::Password(_))
    ));
    assert!(matches!(
        s.create_account("a:b", "long enough pw", &h, T0),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.sign_in("alice", "alice's long password", &h).unwrap(),
        Some(AccountSource::Portal)
    );
    assert_eq!(
        s.sign_in("alice", "alice's long passworD", &h).unwrap(),
        None
    );
    assert_eq!(
        s.sign_in("mirror-admin", "admin pw 123", &h).unwrap(),
        Some(AccountSource::Htpasswd)
    );
    assert_eq!(s.sign_in("mirror-admin", "wrong", &h).unwrap(), None);
    assert_eq!(s.sign_in("nobody", "admin pw 123", &h).unwrap(), None);
    let log = s.audit_log().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].actor.as_str(), log[0].action.as_str()),
        ("alice", "account-created")
    );
}

/// Stop the database and open it again: everything is still there.
fn a_restart_keeps_everything(b: &mut Backend<'_>) {
    let mut s = open(b);
    let h = Htpasswd::default();
    s.create_account("ann", "ann's password!", &h, T0).unwrap();
    s.submit(
        "ann",
        "kept",
        TemplateKind::DockerfileFolder,
        &digest(1),
        T0,
    )
    .unwrap();
    pass_all(&mut s, "kept", 1);
    s.review("rita", "kept", 1, Verdict::Approve, "ok", T0 + 1)
        .unwrap();
    s.review("rob", "kept", 1, Verdict::Approve, "ok too", T0 + 2)
        .unwrap();
    s.submit(
        "ann",
        "kept",
        TemplateKind::DockerfileFolder,
        &digest(2),
        T0 + 3,
    )
    .unwrap();
    s.submit(
        "ann",
        "pending",
        TemplateKind::TreeRecipe,
        &digest(3),
        T0 + 4,
    )
    .unwrap();
    let snapshot = |s: &mut Store| {
        (
            s.account("ann").unwrap(),
            s.template("kept").unwrap(),
            s.template("pending").unwrap(),
            s.revisions("kept").unwrap(),
            s.reviews("kept").unwrap(),
            s.listed().unwrap(),
            s.audit_log().unwrap(),
        )
    };
    let before = snapshot(&mut s);
    drop(s);
    b.restart();
    let mut s = open(b);
    assert_eq!(snapshot(&mut s), before);
    assert!(before.1.unwrap().update_under_review());
    // And it goes on from there: the ids continue.
    s.review("rita", "kept", 2, Verdict::RequestChanges, "", T0 + 5)
        .unwrap();
    let ids: Vec<i64> = s.reviews("kept").unwrap().iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

/// Quotes, comment markers, placeholders and the like go in as data and
/// come back unchanged, in every text field.
fn sql_metacharacters_round_trip(b: &mut Backend<'_>) {
    let mut s = open(b);
    let nasty = [
        "'; DROP TABLE accounts; --",
        "\"quoted\" name",
        "O'Brien",
        "back\\slash",
        "$1$2?1?@p",
        "%_like_%",
        "/*comment*/",
        "ünïcödé-🙂",
        "semi;colon",
    ];
    let long_text = format!(
        "line one\n\t'; DELETE FROM reviews WHERE '1'='1\n-- {}\n$$ plpgsql $$ E'\\x00'",
        nasty.join(" | ")
    );
    let h = Htpasswd::default();
    for (i, name) in nasty.iter().enumerate() {
        let name = name.replace(' ', "_"); // account names hold no spaces
        s.create_account(&name, "a long enough password", &h, T0)
            .unwrap();
        assert_eq!(s.account(&name).unwrap().unwrap().name, name);
        assert_eq!(
            s.sign_in(&name, "a long enough password", &h).unwrap(),
            Some(AccountSource::Portal)
        );
        let template = format!("t{i}");
        s.submit(
            &name,
            &template,
            TemplateKind::DockerfileFolder,
            &digest(i as u8),
            T0,
        )
        .unwrap();
        for kind in CheckKind::ALL {
            s.record_check(
                &name,
                &template,
                1,
                kind,
                CheckStatus::Passed,
                Some(&long_text),
                T0,
            )
            .unwrap();
        }
        let t = s.template(&template).unwrap().unwrap();
        assert_eq!(t.author, name);
        let rev = s.revision(&template, 1).unwrap().unwrap();
        assert_eq!(rev.build.log.as_deref(), Some(long_text.as_str()));
    }
    // Reviewers with such names, comments and reasons.
    let reviewers: Vec<String> = nasty[..2].iter().map(|n| n.replace(' ', "_")).collect();
    let policy = ReviewPolicy {
        reviewers: reviewers.iter().cloned().collect(),
        maintainers: [nasty[2].to_string()].into(),
        ..ReviewPolicy::default()
    };
    drop(s);
    let mut s = Store::open(&b.database(), policy).unwrap();
    for r in &reviewers {
        s.review(r, "t5", 1, Verdict::Approve, &long_text, T0)
            .unwrap();
    }
    let reviews = s.reviews("t5").unwrap();
    assert_eq!(
        reviews
            .iter()
            .map(|r| r.reviewer.clone())
            .collect::<Vec<_>>(),
        reviewers
    );
    assert!(reviews.iter().all(|r| r.comment == long_text));
    s.withdraw(nasty[2], "t5", &long_text, T0).unwrap();
    let last = s.audit_log().unwrap().pop().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.detail.as_str()),
        (nasty[2], long_text.as_str())
    );
    // Nothing was dropped or emptied along the way.
    assert_eq!(s.under_review().unwrap().len(), nasty.len() - 1);
    for name in nasty {
        assert!(s.account(&name.replace(' ', "_")).unwrap().is_some());
    }
    // Lookups with metacharacters find nothing rather than everything.
    assert_eq!(s.template("' OR '1'='1").unwrap(), None);
    assert_eq!(s.account("%").unwrap(), None);
    assert_eq!(s.by_digest("' OR 1=1 --").unwrap(), None);
    // A control character is refused before it reaches the database.
    assert!(matches!(
        s.review(&reviewers[0], "t0", 1, Verdict::Approve, "nul\0byte", T0),
        Err(StoreError::Invalid(_))
    ));
}

/// A failed publication is one audit line with its error, made safe for
/// both databases (PostgreSQL refuses NUL in text), and when it is tried
/// again.
fn publish_failures_are_audited(b: &mut Backend<'_>) {
    let mut s = open(b);
    let error = format!(
        "pushing community/t:1: connect\0ion '; DROP TABLE audit_log; --\nrefused {}",
        "x".repeat(10_000)
    );
    s.record_publish_failure(
        "corral-checks",
        "t",
        1,
        &error,
        std::time::Duration::from_secs(60),
        T0,
    )
    .unwrap();
    let lines = s.audit_of("t").unwrap();
    assert_eq!(lines.len(), 1);
    let a = &lines[0];
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.revision, a.at),
        ("corral-checks", "publish-failed", Some(1), T0)
    );
    assert!(
        a.detail.starts_with(
            "pushing community/t:1: connect ion '; DROP TABLE audit_log; -- refused xxx"
        ),
        "{}",
        a.detail
    );
    assert!(
        a.detail.ends_with("x … (next attempt in 60 s)"),
        "{}",
        a.detail
    );
    assert!(a.detail.len() < 4200, "{}", a.detail.len());
}

/// Opening runs the migrations once; opening again changes nothing; a
/// database from a newer corral is refused.
fn migrations_are_idempotent(b: &mut Backend<'_>) {
    let all: Vec<i64> = migrations::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(all, [1, 2, 3]);
    let mut s = open(b);
    assert_eq!(migrations::applied(s.connection()).unwrap(), all);
    s.submit(
        "ann",
        "kept",
        TemplateKind::DockerfileFolder,
        &digest(1),
        T0,
    )
    .unwrap();
    assert_eq!(
        migrations::migrate(s.connection()).unwrap(),
        Vec::<i64>::new()
    );
    drop(s);
    let mut s = open(b);
    assert_eq!(migrations::applied(s.connection()).unwrap(), all);
    assert!(
        s.template("kept").unwrap().is_some(),
        "reopening kept the data"
    );
    s.connection()
        .execute(
            "INSERT INTO portal_migrations (version, name) VALUES ($1, $2)",
            &[Value::Int(99), Value::from("from the future")],
        )
        .unwrap();
    drop(s);
    match Store::open(&b.database(), policy()) {
        Err(StoreError::Db(DbError::TooNew {
            found: 99,
            known: 3,
        })) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a database from a newer corral was opened"),
    }
}

/// The audit log is append-only in the database itself: a statement that
/// would rewrite or erase it fails and changes nothing.
fn the_audit_log_is_append_only(b: &mut Backend<'_>) {
    let mut s = open(b);
    s.submit(
        "ann",
        "audited",
        TemplateKind::DockerfileFolder,
        &digest(1),
        T0,
    )
    .unwrap();
    let before = s.audit_log().unwrap();
    assert_eq!(before.len(), 1);
    let conn = s.connection();
    let e = conn
        .execute("UPDATE audit_log SET actor = $1", &[Value::from("mallory")])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = conn.execute("DELETE FROM audit_log", &[]).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert_eq!(s.audit_log().unwrap(), before);
    // A failing transaction leaves nothing half-done either.
    let r: Result<(), DbError> = db::transaction(s.connection(), |c| {
        c.execute(
            "INSERT INTO accounts (name, password_hash, created_at) VALUES ($1, $2, $3)",
            &["ghost".into(), "x".into(), T0.into()],
        )?;
        c.execute("DELETE FROM audit_log", &[])?;
        Ok(())
    });
    assert!(r.is_err());
    assert_eq!(
        s.account("ghost").unwrap(),
        None,
        "the insert was rolled back"
    );
    if s.connection().dialect() == db::Dialect::Postgres {
        let e = s.connection().batch("TRUNCATE audit_log").unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
        assert_eq!(s.audit_log().unwrap(), before);
    }
}

/// Replicas starting together on a fresh database: one migrates, the
/// others wait and find nothing left to do; none fails.
fn replicas_open_a_fresh_database_together(b: &mut Backend<'_>) {
    let db = b.database();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut s = Store::open(&db, policy()).unwrap();
                migrations::applied(s.connection()).unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("an opening thread panicked"), [1, 2, 3]);
    }
}

/// Two reviewers approve at the same moment through two connections (two
/// mirror replicas): every template is published, exactly once. Without
/// serializable transactions each would count only its own approval and
/// the template would stay under review with two approvals.
fn concurrent_approvals_publish_once(b: &mut Backend<'_>) {
    const N: u8 = 12;
    let db = b.database();
    let mut s = open(b);
    for i in 0..N {
        let name = format!("race{i}");
        s.submit("ann", &name, TemplateKind::DockerfileFolder, &digest(i), T0)
            .unwrap();
        pass_all(&mut s, &name, 1);
    }
    drop(s);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = ["rita", "rob"]
        .into_iter()
        .map(|who| {
            let db = db.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut s = Store::open(&db, policy()).unwrap();
                for i in 0..N {
                    barrier.wait();
                    s.review(who, &format!("race{i}"), 1, Verdict::Approve, "", T0)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a reviewer thread panicked");
    }
    let mut s = open(b);
    for i in 0..N {
        let t = s.template(&format!("race{i}")).unwrap().unwrap();
        assert_eq!(t.state, TemplateState::Published, "race{i}");
    }
    let published = s
        .audit_log()
        .unwrap()
        .iter()
        .filter(|a| a.action == "published")
        .count();
    assert_eq!(published, usize::from(N));
}

/// Sessions live in the database: another connection (a replica) sees
/// them, only the hash of an id is stored, they expire, and ending one
/// ends it everywhere.
fn sessions_are_shared_and_expire(b: &mut Backend<'_>) {
    let mut s = open(b);
    let mut replica = open(b);
    let visitor = s.create_session(None, T0, 600).unwrap();
    let ann = s.create_session(Some("ann"), T0, 600).unwrap();
    assert_ne!(visitor.id, ann.id);
    assert_ne!(visitor.session.csrf, ann.session.csrf);
    let seen = replica.session(&ann.id, T0 + 1).unwrap().unwrap();
    assert_eq!(seen.account.as_deref(), Some("ann"));
    assert_eq!(seen.csrf, ann.session.csrf);
    assert_eq!(
        replica
            .session(&visitor.id, T0 + 1)
            .unwrap()
            .unwrap()
            .account,
        None
    );
    // The id itself is not in the database, only its hash.
    let rows = s
        .connection()
        .query("SELECT id_hash FROM sessions", &[])
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let h = r.text(0).unwrap();
        assert!(h != ann.id && h != visitor.id && h.len() == 64);
    }
    assert_eq!(s.session("not a session id", T0).unwrap(), None);
    assert_eq!(s.session(&ann.id, T0 + 600).unwrap(), None, "expired");
    replica.end_session(&visitor.id).unwrap();
    assert_eq!(s.session(&visitor.id, T0 + 1).unwrap(), None, "ended");
    // A new session sweeps the expired ones away.
    s.create_session(Some("rob"), T0 + 601, 600).unwrap();
    let left = s
        .connection()
        .query("SELECT account FROM sessions", &[])
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].text(0).unwrap(), "rob");
}

/// The check runner's queue and the withdrawn templates the website
/// leaves out: the current revisions with a pending check, oldest first,
/// never a replaced or a withdrawn one.
fn the_check_queue_and_withdrawals(b: &mut Backend<'_>) {
    let mut s = open(b);
    let queue = |s: &mut Store| -> Vec<(String, u32)> {
        s.checks_to_run()
            .unwrap()
            .into_iter()
            .map(|r| (r.template, r.number))
            .collect()
    };
    let q = |v: &[(&str, u32)]| -> Vec<(String, u32)> {
        v.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    };
    assert!(queue(&mut s).is_empty());
    s.submit(
        "ann",
        "hello",
        TemplateKind::DockerfileFolder,
        &digest(1),
        T0,
    )
    .unwrap();
    s.submit(
        "ann",
        "a-tree",
        TemplateKind::TreeRecipe,
        &digest(2),
        T0 + 1,
    )
    .unwrap();
    s.submit(
        "rob",
        "later",
        TemplateKind::DockerfileFolder,
        &digest(3),
        T0 + 2,
    )
    .unwrap();
    assert_eq!(
        queue(&mut s),
        q(&[("hello", 1), ("a-tree", 1), ("later", 1)])
    );
    // A new revision replaces the old one in the queue, at its own time.
    s.submit(
        "ann",
        "hello",
        TemplateKind::DockerfileFolder,
        &digest(4),
        T0 + 3,
    )
    .unwrap();
    assert_eq!(
        queue(&mut s),
        q(&[("a-tree", 1), ("later", 1), ("hello", 2)])
    );
    // One check recorded is not all of them.
    s.record_check(
        "corral",
        "later",
        1,
        CheckKind::Lint,
        CheckStatus::Passed,
        None,
        T0 + 4,
    )
    .unwrap();
    pass_all(&mut s, "hello", 2);
    assert_eq!(queue(&mut s), q(&[("a-tree", 1), ("later", 1)]));
    for reviewer in ["rita", "rob"] {
        s.review(reviewer, "hello", 2, Verdict::Approve, "ok", T0 + 5)
            .unwrap();
    }
    assert_eq!(
        s.template("hello").unwrap().unwrap().state,
        TemplateState::Published
    );
    // The author's next revision waits for its checks, until the
    // template is withdrawn.
    s.submit(
        "ann",
        "hello",
        TemplateKind::DockerfileFolder,
        &digest(5),
        T0 + 6,
    )
    .unwrap();
    assert_eq!(
        queue(&mut s),
        q(&[("a-tree", 1), ("later", 1), ("hello", 3)])
    );
    assert!(s.withdrawn().unwrap().is_empty());
    s.withdraw("max", "hello", "superseded", T0 + 7).unwrap();
    assert_eq!(queue(&mut s), q(&[("a-tree", 1), ("later", 1)]));
    let withdrawn: Vec<String> = s.withdrawn().unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(withdrawn, ["hello"]);
    assert!(s.listed().unwrap().is_empty());
    let (t, rev) = s.by_digest(&digest(4)).unwrap().unwrap();
    assert_eq!((t.state, rev.number), (TemplateState::Withdrawn, 2));
    let last = s.audit_of("hello").unwrap().pop().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.actor.as_str(),
            last.detail.as_str()
        ),
        ("withdrawn", "max", "superseded")
    );
}

const BODIES: &[(&str, Body)] = &[
    (
        "replicas_open_a_fresh_database_together",
        replicas_open_a_fresh_database_together,
    ),
    (
        "concurrent_approvals_publish_once",
        concurrent_approvals_publish_once,
    ),
    ("the_review_rules", the_review_rules),
    (
        "the_check_queue_and_withdrawals",
        the_check_queue_and_withdrawals,
    ),
    ("approvals_are_configurable", approvals_are_configurable),
    ("accounts_and_htpasswd", accounts_and_htpasswd),
    ("a_restart_keeps_everything", a_restart_keeps_everything),
    (
        "sql_metacharacters_round_trip",
        sql_metacharacters_round_trip,
    ),
    ("migrations_are_idempotent", migrations_are_idempotent),
    ("the_audit_log_is_append_only", the_audit_log_is_append_only),
    ("publish_failures_are_audited", publish_failures_are_audited),
    (
        "sessions_are_shared_and_expire",
        sessions_are_shared_and_expire,
    ),
];

#[test]
fn on_sqlite() {
    support::on_sqlite(BODIES);
}

#[test]
fn on_postgres() {
    support::on_postgres(BODIES);
}
