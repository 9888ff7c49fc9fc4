//! The FleetLock endpoints over real HTTP on 127.0.0.1: slots per group,
//! idempotent requests, release only by the holder, refusals in the
//! protocol's `{"kind","value"}` form, and holders kept across a restart.

mod common;

use common::{write_htpasswd, PASSWORD, USER};
use corral_mirror::config::{Config, FleetLockConfig};
use corral_mirror::server::{start, RunningServer};
use reqwest::StatusCode;

fn config(storage: &std::path::Path, groups: &[(&str, u32)]) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        storage: storage.to_path_buf(),
        fleetlock: Some(FleetLockConfig {
            groups: groups.iter().map(|(g, n)| (g.to_string(), *n)).collect(),
            require_auth: false,
        }),
        ..Default::default()
    }
}

async fn post(
    server: &RunningServer,
    op: &str,
    id: &str,
    group: &str,
) -> (StatusCode, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/{op}", server.addr))
        .header("fleet-lock-protocol", "true")
        .json(&serde_json::json!({"client_params": {"id": id, "group": group}}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

async fn lock(s: &RunningServer, id: &str, group: &str) -> (StatusCode, serde_json::Value) {
    post(s, "pre-reboot", id, group).await
}

async fn unlock(s: &RunningServer, id: &str, group: &str) -> (StatusCode, serde_json::Value) {
    post(s, "steady-state", id, group).await
}

#[tokio::test]
async fn one_slot_two_hosts_the_second_waits_for_the_first_steady_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(config(dir.path(), &[("default", 1)])).await.unwrap();

    assert_eq!(lock(&s, "host-a", "default").await.0, StatusCode::OK);
    // asking again keeps the slot (recursive lock)
    assert_eq!(lock(&s, "host-a", "default").await.0, StatusCode::OK);

    let (status, body) = lock(&s, "host-b", "default").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["kind"], "failed_lock", "{body}");
    assert!(
        body["value"].as_str().unwrap().contains("host-a"),
        "the refusal names the holder: {body}"
    );

    // b's steady-state frees nothing: it holds nothing
    assert_eq!(unlock(&s, "host-b", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "host-b", "default").await.0, StatusCode::CONFLICT);

    // a's steady-state frees its slot, twice is fine, and b gets it
    assert_eq!(unlock(&s, "host-a", "default").await.0, StatusCode::OK);
    assert_eq!(unlock(&s, "host-a", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "host-b", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "host-a", "default").await.0, StatusCode::CONFLICT);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn groups_have_their_own_slots() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(config(dir.path(), &[("default", 1), ("canary", 2)]))
        .await
        .unwrap();
    assert_eq!(lock(&s, "c1", "canary").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "c2", "canary").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "c3", "canary").await.0, StatusCode::CONFLICT);
    // the full canary group takes nothing from default
    assert_eq!(lock(&s, "d1", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "d2", "default").await.0, StatusCode::CONFLICT);
    // a slot is per group: c1's steady-state in default frees nothing
    assert_eq!(unlock(&s, "c1", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "c3", "canary").await.0, StatusCode::CONFLICT);
    assert_eq!(unlock(&s, "c1", "canary").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "c3", "canary").await.0, StatusCode::OK);

    let (status, body) = lock(&s, "x", "nosuch").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["kind"], "unknown_group", "{body}");
    assert!(
        body["value"].as_str().unwrap().contains("canary, default"),
        "{body}"
    );
    s.stop().await.unwrap();
}

#[tokio::test]
async fn holders_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(config(dir.path(), &[("default", 1)])).await.unwrap();
    assert_eq!(lock(&s, "host-a", "default").await.0, StatusCode::OK);
    s.stop().await.unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fleetlock.json")).unwrap()).unwrap();
    assert_eq!(state["groups"]["default"][0]["id"], "host-a", "{state}");

    let s = start(config(dir.path(), &[("default", 1)])).await.unwrap();
    assert_eq!(lock(&s, "host-b", "default").await.0, StatusCode::CONFLICT);
    assert_eq!(lock(&s, "host-a", "default").await.0, StatusCode::OK);
    assert_eq!(unlock(&s, "host-a", "default").await.0, StatusCode::OK);
    s.stop().await.unwrap();

    // and the release is kept too
    let s = start(config(dir.path(), &[("default", 1)])).await.unwrap();
    assert_eq!(lock(&s, "host-b", "default").await.0, StatusCode::OK);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_group_shrunk_below_its_holders_hands_out_nothing_until_they_release() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(config(dir.path(), &[("default", 2)])).await.unwrap();
    assert_eq!(lock(&s, "a", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "b", "default").await.0, StatusCode::OK);
    s.stop().await.unwrap();

    let s = start(config(dir.path(), &[("default", 1)])).await.unwrap();
    // both keep their slots
    assert_eq!(lock(&s, "a", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "b", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "c", "default").await.0, StatusCode::CONFLICT);
    assert_eq!(unlock(&s, "a", "default").await.0, StatusCode::OK);
    // one holder left, one slot: still full
    assert_eq!(lock(&s, "c", "default").await.0, StatusCode::CONFLICT);
    assert_eq!(unlock(&s, "b", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "c", "default").await.0, StatusCode::OK);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn a_slot_is_not_handed_out_when_its_state_cannot_be_saved() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(config(dir.path(), &[("default", 1)])).await.unwrap();
    // the state file's place is taken by a directory: the rename fails
    std::fs::create_dir(dir.path().join("fleetlock.json")).unwrap();
    std::fs::write(dir.path().join("fleetlock.json/x"), "x").unwrap();
    let (status, body) = lock(&s, "host-a", "default").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["kind"], "internal_error");
    assert!(
        !body["value"]
            .as_str()
            .unwrap()
            .contains(dir.path().to_str().unwrap()),
        "paths stay in the log: {body}"
    );
    std::fs::remove_dir_all(dir.path().join("fleetlock.json")).unwrap();
    // nothing was held: another host gets the slot
    assert_eq!(lock(&s, "host-b", "default").await.0, StatusCode::OK);
    assert_eq!(lock(&s, "host-a", "default").await.0, StatusCode::CONFLICT);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn protocol_errors_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(config(dir.path(), &[("default", 1)])).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/pre-reboot", s.addr);
    let body = serde_json::json!({"client_params": {"id": "a", "group": "default"}});

    let resp = client.post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let j: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(j["kind"], "missing_header", "{j}");

    let resp = client
        .post(&url)
        .header("fleet-lock-protocol", "true")
        .body("{\"client_params\":{}}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let j: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(j["kind"], "bad_request", "{j}");
    assert!(j["value"].as_str().unwrap().contains("id"), "{j}");

    let (status, j) = lock(&s, "has space", "default").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(j["kind"], "bad_request", "{j}");
    // none of the refused requests took the slot
    assert_eq!(lock(&s, "a", "default").await.0, StatusCode::OK);
    s.stop().await.unwrap();

    // with require_auth, only htpasswd users
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &[("default", 1)]);
    c.auth.htpasswd = Some(write_htpasswd(dir.path()));
    c.fleetlock.as_mut().unwrap().require_auth = true;
    let s = start(c).await.unwrap();
    let (status, j) = lock(&s, "a", "default").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(j["kind"], "unauthorized", "{j}");
    let resp = client
        .post(format!("http://{}/v1/pre-reboot", s.addr))
        .basic_auth(USER, Some("wrong"))
        .header("fleet-lock-protocol", "true")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .post(format!("http://{}/v1/pre-reboot", s.addr))
        .basic_auth(USER, Some(PASSWORD))
        .header("fleet-lock-protocol", "true")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    s.stop().await.unwrap();
}

#[tokio::test]
async fn without_fleetlock_config_the_endpoints_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &[]);
    c.fleetlock = None;
    let s = start(c).await.unwrap();
    let (status, j) = lock(&s, "a", "default").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(j["kind"], "not_configured", "{j}");
    s.stop().await.unwrap();
}

#[test]
fn config_is_checked() {
    let ok = Config::parse("[fleetlock]\ngroups = { default = 1, canary = 2 }\n").unwrap();
    assert_eq!(ok.fleetlock.unwrap().groups["canary"], 2);
    for (text, wanted) in [
        ("[fleetlock]\ngroups = { default = 0 }\n", "at least 1 slot"),
        ("[fleetlock]\ngroups = {}\n", "groups is empty"),
        (
            "[fleetlock]\ngroups = { \"a b\" = 1 }\n",
            "not a group name",
        ),
        (
            "[fleetlock]\ngroups = { default = 1 }\nrequire_auth = true\n",
            "needs auth.htpasswd",
        ),
        (
            "[fleetlock]\ngroups = { default = 1 }\nslots = 2\n",
            "slots",
        ),
        (
            "[fleetlock]\ngroups = { default = 1 }\n[s3]\nbucket = \"b\"\n",
            "filesystem storage",
        ),
    ] {
        let err = format!("{:#}", Config::parse(text).unwrap_err());
        assert!(err.contains(wanted), "{text}: {err}");
    }
}
