//! The supervisor page in a real headless Chromium: its counters equal the API's, a cancel
//! made on the page reaches the database, it fits a phone's width, it asks for a token when
//! tokens are on and keeps it for the tab only, and it listens to the bus or polls.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it). Without it each test says so and
//! passes, unless `CI` is set.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::PathBuf;
use std::time::Duration;

use browser::{Browser, CHROMIUM};
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 13, h, m, 0).unwrap()
}

fn have_chromium() -> bool {
    if std::path::Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} is missing: apt-get install -y chromium"
    );
    eprintln!("skipped: {CHROMIUM} is missing (apt-get install -y chromium)");
    false
}

fn screenshot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("ui")
        .join(name)
}

/// Four callbacks at 12:15: one leased, one due, two scheduled.
async fn seeded(args: &[&str]) -> (TestApp, Vec<i64>) {
    let app = spawn_app_with(args).await;
    app.login("testagent").await;
    app.clock.set(at(12, 0));
    let ids = vec![
        app.callback_in(1, at(12, 10), at(12, 40)).await,
        app.callback_in(2, at(12, 10), at(12, 40)).await,
        app.callback_in(3, at(12, 50), at(13, 30)).await,
        app.callback_in(4, at(15, 0), at(15, 30)).await,
    ];
    app.clock.set(at(12, 15));
    let lease = json!({"consumer": "d1", "max": 1, "wait_ms": 20000});
    let (_, leased) = app.post("/v1/queue/lease", Some(&lease)).await;
    assert_eq!(leased["events"][0]["callback_id"], ids[0], "{leased}");
    (app, ids)
}

/// The counters once the page (a fresh one after a reload) has read them.
async fn counters_on_page(page: &mut Browser) -> Value {
    page.wait_for(
        "window.beforeReload === undefined
         && document.getElementById('count-dead_letters').textContent !== '–'",
        WAIT,
    )
    .await;
    page.eval(
        "Object.fromEntries(['scheduled', 'due', 'leased', 'expired_today', 'dead_letters']
            .map(n => [n, Number(document.getElementById('count-' + n).textContent)]))",
    )
    .await
}

#[tokio::test]
async fn the_page_shows_the_apis_counters_and_cancels_a_callback() {
    if !have_chromium() {
        return;
    }
    let (app, ids) = seeded(&[]).await;
    let mut page = Browser::open(&app.url("/ui"), 1280, 800, "UTC").await;
    let shown = counters_on_page(&mut page).await;
    let (_, overview) = app.get("/v1/overview?tz=UTC").await;
    assert_eq!(shown, overview["counts"]);
    assert_eq!(
        shown,
        json!({"scheduled": 2, "due": 1, "leased": 1, "expired_today": 0, "dead_letters": 0})
    );
    // The next hour's chart has a bar per five minutes, each with its number.
    page.wait_for(
        "document.querySelectorAll('#next-hour rect').length === 12",
        WAIT,
    )
    .await;
    page.wait_for("document.querySelector('#agents tbody td') !== null", WAIT)
        .await;
    assert_eq!(
        page.eval("document.querySelector('#agents tbody td').textContent")
            .await,
        "testagent"
    );
    // Without colour: states are words, and the page listens to the bus.
    page.wait_for(
        "document.getElementById('status').textContent.startsWith('Live')",
        WAIT,
    )
    .await;

    // Find the agent's callbacks, keep a screenshot, then cancel the third one on the page.
    page.eval(
        "document.getElementById('search-by').value = 'user_id';
         document.getElementById('search-value').value = 'testagent';
         document.getElementById('search').requestSubmit(); true",
    )
    .await;
    let target = ids[2];
    page.wait_for(
        &format!("document.getElementById('cancel-{target}') !== null"),
        WAIT,
    )
    .await;
    page.screenshot(&screenshot("supervisor-1280x800.png"))
        .await;
    page.eval(&format!(
        "document.getElementById('cancel-{target}').click(); true"
    ))
    .await;
    page.wait_for(
        &format!("document.getElementById('confirm-cancel-{target}') !== null"),
        WAIT,
    )
    .await;
    page.eval(&format!(
        "document.getElementById('cancel-reason-{target}').value = 'from the page';
         document.getElementById('confirm-cancel-{target}').click(); true"
    ))
    .await;
    until(WAIT, "the cancel to reach the database", || {
        app.sql()
            .query_row("SELECT state FROM callbacks WHERE id = ?1", [target], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
            == "cancelled"
    })
    .await;
    let reason: String = app
        .sql()
        .query_row(
            "SELECT reason FROM audit WHERE callback_id = ?1 AND action = 'cancel'",
            [target],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "from the page");
    // The row shows it, and a finished callback offers no more changes.
    page.wait_for(
        &format!(
            "document.querySelector('#callback-{target} td:nth-child(2)').textContent === 'cancelled'"
        ),
        WAIT,
    )
    .await;
    assert_eq!(
        page.eval(&format!(
            "document.getElementById('cancel-{target}') === null"
        ))
        .await,
        true
    );
    // The history of the cancelled callback, on the page.
    page.eval(&format!(
        "document.getElementById('history-{target}').click(); true"
    ))
    .await;
    page.wait_for(
        "[...document.querySelectorAll('#history-steps li')].some(li => li.textContent.includes('cancel'))",
        WAIT,
    )
    .await;

    // A phone: nothing wider than the screen.
    page.resize(390, 844, true).await;
    page.eval("window.beforeReload = true; location.reload(); true")
        .await;
    let shown = counters_on_page(&mut page).await;
    assert_eq!(shown["scheduled"], 1, "{shown}");
    assert_eq!(
        page.eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true
    );
    page.screenshot(&screenshot("supervisor-phone.png")).await;
    drop(page);
    app.stop().await;
}

#[tokio::test]
async fn the_page_asks_for_a_token_keeps_it_for_the_tab_and_hides_what_it_may_not_do() {
    if !have_chromium() {
        return;
    }
    let files = tempfile::tempdir().unwrap();
    let tokens = files.path().join("tokens");
    std::fs::write(
        &tokens,
        "super-0123456789abcdef supervisor name=maria\nrepo-0123456789abcdef reporting\n",
    )
    .unwrap();
    let tokens = tokens.display().to_string();
    let (app, _) = seeded(&[]).await;
    let (dir, clock) = app.stop().await;
    let app = spawn_app_in(dir, clock, &["--tokens", &tokens]).await;
    let mut page = Browser::open(&app.url("/ui"), 1280, 800, "UTC").await;
    page.wait_for("document.getElementById('token-dialog').open", WAIT)
        .await;
    let sign_in = |token: &str| {
        format!(
            "document.getElementById('token-input').value = '{token}';
             document.getElementById('token-form').requestSubmit(); true"
        )
    };
    page.eval(&sign_in("repo-0123456789abcdef")).await;
    let shown = counters_on_page(&mut page).await;
    assert_eq!(shown["due"], 1);
    // Kept for the tab (sessionStorage), nowhere that outlives it.
    assert_eq!(
        page.eval("[sessionStorage.getItem('redial.token'), localStorage.length]")
            .await,
        json!(["repo-0123456789abcdef", 0])
    );
    // A reporting token finds callbacks but is offered no change.
    page.eval(
        "document.getElementById('search-by').value = 'user_id';
         document.getElementById('search-value').value = 'testagent';
         document.getElementById('search').requestSubmit(); true",
    )
    .await;
    page.wait_for("document.querySelector('#results tbody tr') !== null", WAIT)
        .await;
    assert_eq!(
        page.eval("document.querySelectorAll('#results button').length === document.querySelectorAll('#results tbody tr').length")
            .await,
        true,
        "only History buttons"
    );
    // A supervisor's token, after forgetting the first, is offered them.
    page.eval("sessionStorage.clear(); window.beforeReload = true; location.reload(); true")
        .await;
    page.wait_for(
        "window.beforeReload === undefined && document.getElementById('token-dialog').open",
        WAIT,
    )
    .await;
    page.eval(&sign_in("super-0123456789abcdef")).await;
    counters_on_page(&mut page).await;
    page.eval(
        "document.getElementById('search-by').value = 'user_id';
         document.getElementById('search-value').value = 'testagent';
         document.getElementById('search').requestSubmit(); true",
    )
    .await;
    page.wait_for(
        "[...document.querySelectorAll('#results button')].some(b => b.textContent === 'Reassign')",
        WAIT,
    )
    .await;
    drop(page);
    app.stop().await;
}

#[tokio::test]
async fn without_a_place_on_the_bus_the_page_polls() {
    if !have_chromium() {
        return;
    }
    let (app, _) = seeded(&["--max-bus-clients", "1"]).await;
    // Another client holds the only place.
    let url = app.url("/v1/bus").replace("http://", "ws://");
    let (_held, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut page = Browser::open(&app.url("/ui"), 1280, 800, "UTC").await;
    counters_on_page(&mut page).await;
    page.wait_for(
        "document.getElementById('status').textContent.startsWith('Polling every 5 s')",
        WAIT,
    )
    .await;
    // A change made elsewhere reaches the page by polling.
    let (_, page_of) = app.get("/v1/callbacks?state=scheduled").await;
    let id = page_of["callbacks"][0]["id"].as_i64().unwrap();
    let (status, _) = app.post(&format!("/v1/callbacks/{id}/cancel"), None).await;
    assert_eq!(status, 200);
    page.wait_for(
        "document.getElementById('count-scheduled').textContent === '1'",
        WAIT,
    )
    .await;
    drop(page);
    app.stop().await;
}
