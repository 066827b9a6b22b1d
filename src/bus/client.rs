//! `redial bus`: a desktop-side client of the bus, as `redial dialer` is of the queue. It
//! subscribes, prints each push as one line of JSON on stdout, and when the socket closes
//! (a restart, a lag) subscribes again after the last id it printed, so no push is missed.

use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// `redial bus --url ws://127.0.0.1:8080/v1/bus --user-id testagent`.
#[derive(Debug, Clone, clap::Args)]
pub struct BusArgs {
    /// The bus's address.
    #[arg(
        long,
        env = "REDIAL_BUS_URL",
        default_value = "ws://127.0.0.1:8080/v1/bus"
    )]
    pub url: String,
    /// Hear one agent's pushes (a desktop).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub user_id: Option<String>,
    /// Hear every push (a supervisor screen; needs the reporting or supervisor role).
    #[arg(long)]
    pub all: bool,
    /// Start with the stored pushes after this id.
    #[arg(long)]
    pub after: Option<i64>,
    /// Bearer token, when the service has `--tokens`.
    #[arg(long, env = "REDIAL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Stop after this many pushes (default: run until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
}

/// Runs until interrupted, or until `--count` pushes were printed.
pub async fn run(args: BusArgs) -> anyhow::Result<()> {
    let mut after = args.after;
    let mut printed = 0u64;
    loop {
        match listen(&args, &mut after, &mut printed).await {
            Ok(Done::Counted) => return Ok(()),
            Ok(Done::Closed(why)) => eprintln!("redial bus: {why}; subscribing again"),
            Err(e) if printed == 0 && after == args.after => return Err(e),
            Err(e) => eprintln!("redial bus: {e:#}; subscribing again in a second"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

enum Done {
    Counted,
    Closed(String),
}

/// One connection: subscribe, then print pushes until it closes.
async fn listen(
    args: &BusArgs,
    after: &mut Option<i64>,
    printed: &mut u64,
) -> anyhow::Result<Done> {
    let mut request = args
        .url
        .as_str()
        .into_client_request()
        .with_context(|| format!("{} is not a WebSocket address", args.url))?;
    if let Some(token) = &args.token {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token cannot be sent in a header")?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("cannot connect to {}", args.url))?;
    let data = match &args.user_id {
        Some(user) => json!({"UserID": user, "after": *after}),
        None => json!({"all": true, "after": *after}),
    };
    let subscribe = json!({"channel": "LCM", "topic": "Bus", "subtopic": "Subscribe",
                           "requestid": "subscribe", "data": data});
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    while let Some(message) = ws.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let why = frame.map_or("the bus closed".to_owned(), |f| f.reason.to_string());
                return Ok(Done::Closed(why));
            }
            _ => continue,
        };
        let value: Value =
            serde_json::from_str(&text).context("the bus sent a frame that is not JSON")?;
        if value["requestid"] == "subscribe" {
            let response = &value["message"]["response"];
            if response["success"] != true {
                anyhow::bail!("the subscription was refused: {}", response["error"]);
            }
            if let Some(gap) = response.get("gap") {
                eprintln!(
                    "redial bus: {}",
                    gap["detail"].as_str().unwrap_or("pushes were purged")
                );
            }
            continue;
        }
        if let Some(id) = value["id"].as_i64() {
            println!("{text}");
            *after = Some(id);
            *printed += 1;
            if args.count.is_some_and(|count| *printed >= count) {
                return Ok(Done::Counted);
            }
        }
    }
    Ok(Done::Closed("the connection ended".to_owned()))
}
