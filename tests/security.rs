//! Roles and tokens: who may call what, the 401 and 403 envelopes, tokens kept out of logs, and
//! the refusal to serve a non-loopback address without tokens.

mod common;

use common::{seed_request, spawn_app_in, spawn_server, t0, TestApp};
use redial::clock::Clock;
use serde_json::{json, Value};

const DESKTOP: &str = "desk-0123456789abcdef";
const TELEPHONY: &str = "tele-0123456789abcdef";
const DIALER: &str = "dial-0123456789abcdef";
const REPORTING: &str = "repo-0123456789abcdef";
const SUPERVISOR: &str = "supe-0123456789abcdef";
const AGENT_DESKTOP: &str = "agen-0123456789abcdef";
const ADMIN: &str = "admi-0123456789abcdef";
const ALL: [&str; 7] = [
    DESKTOP,
    TELEPHONY,
    DIALER,
    REPORTING,
    SUPERVISOR,
    AGENT_DESKTOP,
    ADMIN,
];

fn tokens_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("tokens");
    std::fs::write(
        &path,
        format!(
            "# token roles\n{DESKTOP} desktop\n{TELEPHONY} telephony\n{DIALER} dialer\n\
             {REPORTING} reporting\n{SUPERVISOR} supervisor name=maria\n\
             {AGENT_DESKTOP} desktop agent=testagent\n{ADMIN} admin\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

async fn secured() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(&dir);
    spawn_app_in(dir, Clock::manual(t0()), &["--tokens", &tokens]).await
}

/// `method path` with `token` (if any): the status and the JSON body.
async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let body = match path {
        "/v1/lcm" => seed_request(),
        "/v1/calls" => {
            json!({"callid": "12345", "AccountNumber": "5|3|1|0|0|44|1", "UserID": "testagent"})
        }
        "/v1/queue/lease" => json!({"consumer": "d"}),
        "/v1/callbacks/1/attempts" => json!({"result": "busy"}),
        "/v1/callbacks/1/reassign" => json!({"UserID": "other"}),
        "/v1/agents/testagent/callbacks/reassign" => json!({"to": "other"}),
        _ => json!({}),
    };
    let mut request = match method {
        "GET" => app.client.get(app.url(path)),
        "PUT" => app.client.put(app.url(path)),
        "DELETE" => app.client.delete(app.url(path)),
        _ => app.client.post(app.url(path)).json(&body),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Each route and the tokens (besides admin) that may use it. A desktop token that names an
/// agent passes the role check of the reads and is narrowed to its agent by the handler.
const ROUTES: &[(&str, &str, &[&str])] = &[
    ("POST", "/v1/lcm", &[DESKTOP, AGENT_DESKTOP]),
    ("POST", "/v1/agents/testagent/login", &[TELEPHONY]),
    ("POST", "/v1/calls", &[TELEPHONY]),
    ("POST", "/v1/queue/lease", &[DIALER]),
    ("POST", "/v1/callbacks/1/attempts", &[DIALER]),
    (
        "GET",
        "/v1/callbacks/1",
        &[REPORTING, DIALER, SUPERVISOR, AGENT_DESKTOP],
    ),
    (
        "GET",
        "/v1/callbacks",
        &[REPORTING, SUPERVISOR, AGENT_DESKTOP],
    ),
    (
        "GET",
        "/v1/agents/testagent/callbacks",
        &[REPORTING, SUPERVISOR, AGENT_DESKTOP],
    ),
    ("POST", "/v1/callbacks/1/reschedule", &[SUPERVISOR]),
    ("POST", "/v1/callbacks/1/reassign", &[SUPERVISOR]),
    (
        "POST",
        "/v1/agents/testagent/callbacks/reassign",
        &[SUPERVISOR],
    ),
    ("POST", "/v1/callbacks/1/cancel", &[DIALER, SUPERVISOR]),
    ("GET", "/v1/dnc", &[REPORTING, SUPERVISOR]),
    ("PUT", "/v1/dnc/acct-1", &[SUPERVISOR]),
    ("DELETE", "/v1/dnc/acct-2", &[SUPERVISOR]),
    ("GET", "/metrics", &[REPORTING]),
    (
        "GET",
        "/v1/callbacks/1/history",
        &[REPORTING, DIALER, SUPERVISOR, AGENT_DESKTOP],
    ),
    ("GET", "/v1/overview", &[REPORTING, SUPERVISOR]),
    ("GET", "/v1/reports/sla", &[REPORTING, SUPERVISOR]),
    (
        "GET",
        "/v1/whoami",
        &[
            DESKTOP,
            TELEPHONY,
            DIALER,
            REPORTING,
            SUPERVISOR,
            AGENT_DESKTOP,
        ],
    ),
];

#[tokio::test]
async fn each_route_answers_its_role_and_admin_and_no_other() {
    let app = secured().await;
    for &(method, path, allowed) in ROUTES {
        for token in ALL {
            let (status, body) = call(&app, method, path, Some(token)).await;
            if allowed.contains(&token) || token == ADMIN {
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} with {token}: {status} {body}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} with {token}: {body}");
            }
        }
    }
    let (status, body) = call(&app, "GET", "/healthz", None).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("ok")),
        "health is open"
    );
}

/// The page shows only what a token may use: it asks who the token is.
#[tokio::test]
async fn whoami_names_the_token_and_its_roles() {
    let app = secured().await;
    let (status, me) = call(&app, "GET", "/v1/whoami", Some(SUPERVISOR)).await;
    assert_eq!(status, 200);
    assert_eq!(
        me,
        json!({"name": "maria", "roles": ["supervisor"], "agent": null})
    );
    let (_, me) = call(&app, "GET", "/v1/whoami", Some(AGENT_DESKTOP)).await;
    assert_eq!(me["roles"], json!(["desktop"]));
    assert_eq!(me["agent"], "testagent");
    let (status, _) = call(&app, "GET", "/v1/whoami", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn missing_and_unknown_tokens_get_401_with_an_envelope() {
    let app = secured().await;
    for token in [None, Some("not-a-known-token-at-all")] {
        let (status, body) = call(&app, "POST", "/v1/lcm", token).await;
        assert_eq!(status, 401);
        assert_eq!(
            body["subtopic"],
            "SetBusinessOutcomeWithPersonalCallbackResult"
        );
        let error = &body["message"]["response"]["error"];
        assert_eq!(body["message"]["response"]["success"], false);
        assert_eq!(error["message"], "Unauthorized.");
        assert_eq!(error["type"], "WS_Error");
        assert!(
            error["detail"].as_str().unwrap().contains("token"),
            "{body}"
        );

        let (status, body) = call(&app, "POST", "/v1/queue/lease", token).await;
        assert_eq!(status, 401);
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["message"], "Unauthorized.");
    }
    let (status, body) = call(&app, "POST", "/v1/lcm", Some(DIALER)).await;
    assert_eq!(status, 403);
    let error = &body["message"]["response"]["error"];
    assert_eq!(error["message"], "Forbidden.");
    assert!(
        error["detail"].as_str().unwrap().contains("desktop"),
        "{body}"
    );
    assert_eq!(app.count("outcomes"), 0, "nothing was stored");
}

#[test]
fn tokens_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens_file(&dir);
    let server = spawn_server(&dir.path().join("redial.db"), &["--tokens", &tokens]);
    for token in [DESKTOP, "an-unknown-token-0123456789"] {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let status = runtime.block_on(async {
            reqwest::Client::new()
                .post(server.url("/v1/lcm"))
                .bearer_auth(token)
                .json(&seed_request())
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_ne!(status, 200);
    }
    let log = std::sync::Arc::clone(&server.log);
    assert_eq!(server.terminate(), Some(0));
    let log = log.lock().unwrap();
    let requests = log.iter().filter(|l| l.contains("/v1/lcm")).count();
    assert_eq!(requests, 2, "both requests were logged: {log:?}");
    for line in log.iter() {
        assert!(
            !line.contains(DESKTOP) && !line.contains("an-unknown-token"),
            "a token in the log: {line}"
        );
    }
}

#[tokio::test]
async fn a_public_address_needs_tokens_or_an_explicit_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("redial.db").display().to_string();
    let config = redial::config::Config::from_args(["--db", db.as_str()]).unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let refused = redial::serve(config, Clock::manual(t0()), listener, async {}).await;
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!(
            "refusing to serve {address} without --tokens: anyone who can reach it could set \
             outcomes and read the queue; give --tokens FILE, or --insecure-no-auth to accept that"
        )
    );
    assert!(
        !dir.path().join("redial.db").exists(),
        "refused before touching the database"
    );

    let config =
        redial::config::Config::from_args(["--db", db.as_str(), "--insecure-no-auth"]).unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    // Told to stop at once: it starts, then stops cleanly.
    redial::serve(config, Clock::manual(t0()), listener, async {})
        .await
        .unwrap();
}
