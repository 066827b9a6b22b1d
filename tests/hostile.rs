//! Hostile input through the real server: every file of `data/hostile/` (listed with its
//! expected answer in `expect.json`), a 10 MB string, and the same corpus against the REST
//! endpoints. No panic, no 5xx, every answer an envelope naming the field where there is one.

mod common;

use std::collections::BTreeMap;

use common::{data_dir, spawn_app};
use redial::lcm::Subtopic;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Expected {
    status: u16,
    field: Option<String>,
}

fn corpus() -> Vec<(String, Vec<u8>, Expected)> {
    let dir = data_dir().join("hostile");
    let mut expect: BTreeMap<String, Expected> =
        serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name == "expect.json" {
            continue;
        }
        let expected = expect
            .remove(&name)
            .unwrap_or_else(|| panic!("data/hostile/{name} has no line in expect.json"));
        cases.push((
            name.clone(),
            std::fs::read(dir.join(&name)).unwrap(),
            expected,
        ));
    }
    assert!(
        expect.is_empty(),
        "expect.json lists missing files: {expect:?}"
    );
    assert!(cases.len() >= 60);
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

#[tokio::test]
async fn every_hostile_request_gets_an_envelope_naming_its_field() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    for (name, body, expected) in corpus() {
        // (`post_lcm_raw` fails the test if the answer is not JSON.)
        let (status, reply) = app.post_lcm_raw(body).await;
        assert_eq!(status, expected.status, "{name}: {reply}");
        assert_eq!(reply["channel"], "LCM", "{name}: {reply}");
        let outcome = &reply["message"]["response"];
        assert_eq!(outcome["success"], false, "{name}: {reply}");
        let error = &outcome["error"];
        assert_eq!(error["type"], "WS_Error", "{name}: {reply}");
        assert_eq!(
            error["field"].as_str(),
            expected.field.as_deref(),
            "{name}: {reply}"
        );
        let detail = error["detail"].as_str().unwrap();
        assert!(!detail.is_empty() && detail.len() < 600, "{name}: {detail}");
        if let Some(field) = &expected.field {
            let message = error["message"].as_str().unwrap();
            assert!(
                message.contains(field.as_str())
                    || message == "Invalid Call ID."
                    || message == "Invalid callback window.",
                "{name}: {message}"
            );
        }
    }
    // Nothing was stored, nothing was dropped, and the server is still well.
    assert_eq!(app.count("outcomes"), 0);
    assert_eq!(app.count("calls"), 1);
    let integrity: String = app
        .sql()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(app.get("/healthz").await.0, 200);
}

/// The same corpus as every other subtopic of the family: the seed's subtopic swapped for
/// each. A field one message ignores may make it valid for that one; none may get a 5xx or
/// anything but an envelope, and every refusal names what it refuses.
#[tokio::test]
async fn every_subtopic_takes_the_corpus_without_a_5xx() {
    let app = spawn_app().await;
    app.seed_prerequisites().await;
    let seed = Subtopic::PersonalCallback.name().as_bytes();
    for subtopic in Subtopic::ALL {
        let name = subtopic.name().as_bytes();
        for (file, body, _) in corpus() {
            let (status, reply) = app.post_lcm_raw(swap(&body, seed, name)).await;
            let case = format!("{subtopic} {file}");
            assert!(
                status == 200 || (400..500).contains(&status),
                "{case}: {status} {reply}"
            );
            assert_eq!(reply["channel"], "LCM", "{case}: {reply}");
            let outcome = &reply["message"]["response"];
            if status == 200 {
                continue;
            }
            assert_eq!(outcome["success"], false, "{case}: {reply}");
            let detail = outcome["error"]["detail"].as_str().unwrap_or_default();
            assert!(!detail.is_empty() && detail.len() < 600, "{case}: {reply}");
        }
    }
    let integrity: String = app
        .sql()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(app.get("/healthz").await.0, 200);
}

/// `body` with every `from` replaced by `to`.
fn swap(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[tokio::test]
async fn a_ten_megabyte_string_is_refused_whole_with_413() {
    let app = spawn_app().await;
    let huge = format!(
        r#"{{"channel": "LCM", "data": {{"AgentComments": "{}"}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    for path in ["/v1/lcm", "/v1/calls", "/v1/queue/lease"] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 413, "{path}");
        let reply: Value = response.json().await.unwrap();
        let error = if path == "/v1/lcm" {
            &reply["message"]["response"]["error"]
        } else {
            &reply["error"]
        };
        assert_eq!(error["message"], "Request too large.", "{path}: {reply}");
    }
}

#[tokio::test]
async fn the_rest_endpoints_take_the_same_corpus_without_a_5xx() {
    let app = spawn_app().await;
    for (name, body, _) in corpus() {
        for path in [
            "/v1/calls",
            "/v1/queue/lease",
            "/v1/queue/ack",
            "/v1/callbacks/1/attempts",
        ] {
            let response = app
                .client
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let reply: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                (400..500).contains(&status),
                "{path} {name}: {status} {reply}"
            );
            assert_eq!(reply["success"], false, "{path} {name}: {reply}");
            assert!(
                reply["error"]["detail"].is_string(),
                "{path} {name}: {reply}"
            );
        }
    }
}
