//! A real WebSocket client of the bus (tokio-tungstenite), for the tests and the benchmark.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a bus closed a socket with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

/// `ws://` for the server at `base` (`http://host:port`).
pub fn bus_url(base: &str) -> String {
    format!("{}/v1/bus", base.replacen("http://", "ws://", 1))
}

impl Ws {
    /// Connects to the bus at `base`, with a bearer header if `token` is given.
    pub async fn connect(base: &str, token: Option<&str>) -> Ws {
        Self::try_connect(&bus_url(base), token)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the bus: {e}"))
    }

    pub async fn try_connect(
        url: &str,
        token: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws { stream })
    }

    pub async fn send(&mut self, value: &Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(Message::Text(text.into())).await.unwrap();
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(Message::Binary(bytes.into()))
            .await
            .unwrap();
    }

    /// Sends `text` as it is (not necessarily JSON) and returns the reply.
    pub async fn request_text(&mut self, text: impl Into<String>) -> Value {
        self.send_text(text.into()).await;
        self.next().await
    }

    /// The next text frame, as JSON; fails the test on a close or after [`PATIENCE`].
    pub async fn next(&mut self) -> Value {
        match self.next_or_close().await {
            Ok(value) => value,
            Err(closed) => panic!("the bus closed the socket: {closed:?}"),
        }
    }

    /// The next text frame, or how the socket was closed.
    pub async fn next_or_close(&mut self) -> Result<Value, Closed> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("no frame from the bus in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(&text).expect("the frame is JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Closed {
                            code: CloseCode::into(f.code),
                            reason: f.reason.to_string(),
                        },
                    ))
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the socket failed: {e}"),
                None => {
                    return Err(Closed {
                        code: 1006,
                        reason: "ended without a close frame".into(),
                    })
                }
            }
        }
    }

    /// Sends `request` and returns the next frame, its reply.
    pub async fn request(&mut self, request: &Value) -> Value {
        self.send(request).await;
        self.next().await
    }

    /// Subscribes with `data` (`{"UserID": ...}` or `{"all": true}`, maybe `"after"`) and
    /// returns the reply's `response`.
    pub async fn subscribe(&mut self, data: Value) -> Value {
        let reply = self
            .request(
                &json!({"channel": "LCM", "topic": "Bus", "subtopic": "Subscribe",
                             "requestid": "sub", "data": data}),
            )
            .await;
        assert_eq!(reply["subtopic"], "SubscribeResult", "{reply}");
        assert_eq!(reply["requestid"], "sub", "{reply}");
        reply["message"]["response"].clone()
    }

    /// The next push (a frame with an `id`), skipping nothing: a reply here fails the test.
    pub async fn push(&mut self) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["topic"], "Bus", "expected a push, got {frame}");
        assert!(frame["id"].is_i64(), "expected a push, got {frame}");
        frame
    }
}
