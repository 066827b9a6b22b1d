//! `GET /v1/bus`: the bus, a WebSocket (README: The bus). Each text frame is one LCM envelope,
//! answered on the same socket by [`super::lcm::reply`], exactly as `POST /v1/lcm` answers
//! it; `topic: "Bus"` messages subscribe the socket to pushes ([`crate::bus`]).
//!
//! One task serves a socket: it reads frames, runs up to [`IN_FLIGHT`] requests at once, and
//! writes their replies and the socket's pushes. A write that takes longer than the ping
//! interval closes the socket, so a client that stops reading holds nothing but itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{FuturesUnordered, SplitSink};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth::{self, Access, Identity, Role};
use super::openapi;
use super::{lcm, AppState, Problem, BODY_LIMIT, DESKTOP};
use crate::bus::{Audience, Bus, Frame, Subscription};
use crate::lcm::control::Control;
use crate::lcm::envelope::{Envelope, ReplyHead};
use crate::lcm::{ErrorObject, LcmError, Message as Lcm};

/// Requests one socket may have running at once; past it, its frames wait to be read.
pub const IN_FLIGHT: usize = 64;

/// The largest frame read at all. Frames up to [`BODY_LIMIT`] are requests; larger ones up to
/// this are answered with the body-limit refusal, as `POST /v1/lcm` answers them; past this the
/// socket is closed (1009), as a frame must be read whole before it can be answered.
pub const FRAME_LIMIT: usize = 4 * BODY_LIMIT;

/// What the bus holds for the sockets.
pub struct Sockets {
    pub bus: Arc<Bus>,
    /// One permit per socket (`--max-bus-clients`).
    pub permits: Arc<Semaphore>,
    pub max: usize,
    /// `--bus-ping`.
    pub ping: Duration,
    /// Every socket's task, waited for at shutdown.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: sockets answer what they have in hand and close with 1001.
    pub closing: CancellationToken,
}

/// Roles that may hear every push.
const ALL_PUSHES: Access = Access::Roles(&[Role::Reporting, Role::Supervisor]);

#[derive(Debug, Deserialize)]
pub struct Upgrade {
    /// The bearer token, for browsers, which cannot set headers on a WebSocket.
    token: Option<String>,
}

/// Authenticates (bearer header, or `?token=`), takes a place among `--max-bus-clients`, and
/// upgrades.
#[utoipa::path(get, path = "/v1/bus", tag = "lcm", security(()),
    params(("token" = Option<String>, Query, description = "The bearer token, for browsers, which cannot set headers on a WebSocket")),
    responses(
        (status = 101, description = "A WebSocket: LCM envelopes in, replies and pushes out"),
        openapi::Refusals,
        (status = 426, description = "Not a WebSocket upgrade", body = openapi::Refusal)))]
pub async fn upgrade(
    State(app): State<AppState>,
    Query(query): Query<Upgrade>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let presented = auth::bearer(&headers).or(query.token.as_deref().map(str::as_bytes));
    let identity = match auth::authenticate(app.tokens.as_deref(), presented) {
        Ok(identity) => identity,
        Err(problem) => return problem.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return Problem::not_a_websocket(rejection.body_text()).into_response();
        }
    };
    let sockets = &app.sockets;
    let Ok(permit) = Arc::clone(&sockets.permits).try_acquire_owned() else {
        return Problem::bus_full(sockets.max).into_response();
    };
    let task = sockets.tasks.token();
    let socket_app = app.clone();
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(FRAME_LIMIT)
        .max_frame_size(FRAME_LIMIT)
        .on_upgrade(move |ws| async move {
            Socket::new(socket_app, identity, permit).serve(ws).await;
            drop(task);
        })
}

/// Pushes written together at most, when several are queued.
const PUSHES_A_WRITE: usize = 64;

/// Bytes of frames a socket gathers before it writes them (a flush writes what it has): the
/// pushes queued for one socket leave in one system call.
const WRITE_BUFFER: usize = 16 * 1024;

/// Bytes a socket reads at a time: an idle socket holds this much (BENCHMARKS.md: the bus).
const READ_BUFFER: usize = 4096;

type Pending = Pin<Box<dyn Future<Output = Utf8Bytes> + Send>>;
type Sink = SplitSink<WebSocket, Message>;

/// Why a socket closes.
enum Closing {
    /// The client closed, or the connection broke: nothing more to say.
    Gone,
    /// Shutdown: 1001 once every request in hand is answered.
    Shutdown,
    /// With this close frame.
    With(u16, String),
}

struct Socket {
    app: AppState,
    /// `None`: no tokens configured, everything allowed.
    identity: Option<Identity>,
    _permit: OwnedSemaphorePermit,
    subscription: Option<Subscription>,
    /// The last push id this socket has passed (sent, or skipped as not its audience's).
    last: i64,
    in_flight: FuturesUnordered<Pending>,
}

impl Socket {
    fn new(app: AppState, identity: Option<Identity>, permit: OwnedSemaphorePermit) -> Self {
        Self {
            app,
            identity,
            _permit: permit,
            subscription: None,
            last: 0,
            in_flight: FuturesUnordered::new(),
        }
    }

    async fn serve(mut self, ws: WebSocket) {
        let sockets = &self.app.sockets;
        let (ping, closing) = (sockets.ping, sockets.closing.clone());
        let (mut sink, mut stream) = ws.split();
        let mut heard = Instant::now();
        let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
        let end = loop {
            let step = tokio::select! {
                _ = closing.cancelled() => Err(Closing::Shutdown),
                Some(reply) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    send(&mut sink, Message::Text(reply), ping).await
                }
                frame = stream.next(), if self.in_flight.len() < IN_FLIGHT => match frame {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(Closing::Gone),
                    Some(Ok(message)) => {
                        heard = Instant::now();
                        self.read(message, &mut sink, ping).await
                    }
                },
                push = next_push(&mut self.subscription) => match push {
                    Some(frame) => self.send_pushes(frame, &mut sink, ping).await,
                    None => Err(self.lagged()),
                },
                _ = pings.tick() => {
                    if heard.elapsed() > 2 * ping {
                        Err(Closing::With(1008, format!(
                            "nothing heard for {} ms, not even a pong", (2 * ping).as_millis()
                        )))
                    } else {
                        send(&mut sink, Message::Ping(Default::default()), ping).await
                    }
                }
            };
            if let Err(end) = step {
                break end;
            }
        };
        let (code, reason) = match end {
            Closing::Gone => return,
            Closing::With(code, reason) => (code, reason),
            Closing::Shutdown => {
                while let Some(reply) = self.in_flight.next().await {
                    if send(&mut sink, Message::Text(reply), ping).await.is_err() {
                        return;
                    }
                }
                (1001, "redial is shutting down".to_owned())
            }
        };
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = send(&mut sink, close, ping).await;
    }

    /// One frame from the client.
    async fn read(&mut self, message: Message, sink: &mut Sink, ping: Duration) -> Step {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                let error = ErrorObject::refused(
                    "Invalid request.".to_owned(),
                    "binary frames are not read: send each LCM envelope as a text frame".into(),
                    None,
                );
                return answer_now(sink, &ReplyHead::default(), error, ping).await;
            }
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Ok(()),
        };
        if text.len() > BODY_LIMIT {
            let error = LcmError::TooLarge { limit: BODY_LIMIT }.error_object();
            return answer_now(sink, &ReplyHead::default(), error, ping).await;
        }
        let (head, parsed) = Envelope::parse(text.as_bytes());
        if let Ok(Envelope {
            message: Lcm::Control(control),
            ..
        }) = parsed
        {
            // Boxed: a subscription's replay is a large future, and every idle socket would
            // otherwise hold room for it.
            return Box::pin(self.control(control, head, sink, ping)).await;
        }
        if let Err(problem) = self.allowed(DESKTOP) {
            return answer_now(sink, &head, problem.error, ping).await;
        }
        let app = self.app.clone();
        self.in_flight.push(Box::pin(async move {
            let (_, json) = lcm::reply(&app.service, &head, parsed).await;
            Utf8Bytes::try_from(json).expect("JSON is UTF-8")
        }));
        Ok(())
    }

    /// Sends `first` and every push already queued behind it, in one write: when a burst of
    /// windows opens, a desktop's pushes leave in one system call, not one each.
    async fn send_pushes(&mut self, first: Frame, sink: &mut Sink, ping: Duration) -> Step {
        let mut frame = first;
        let sent = tokio::time::timeout(ping, async {
            for _ in 0..PUSHES_A_WRITE {
                self.last = frame.id;
                sink.feed(Message::Text(frame.text)).await?;
                let queued = self.subscription.as_mut().map(|s| s.rx.try_recv());
                match queued {
                    Some(Ok(next)) => frame = next,
                    _ => break,
                }
            }
            sink.flush().await
        })
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            _ => Err(Closing::Gone),
        }
    }

    fn allowed(&self, access: Access) -> Result<(), Problem> {
        match &self.identity {
            Some(identity) => identity.allows(access),
            None => Ok(()),
        }
    }

    /// `Subscribe` or `Unsubscribe`.
    async fn control(
        &mut self,
        control: Control,
        head: ReplyHead,
        sink: &mut Sink,
        ping: Duration,
    ) -> Step {
        let Control::Subscribe { audience, after } = control else {
            self.subscription = None;
            let reply = control_reply(&head, serde_json::json!({"success": true}));
            return send(sink, reply, ping).await;
        };
        if let Err(problem) = self.may_hear(&audience) {
            return answer_now(sink, &head, problem.error, ping).await;
        }
        self.subscription = None;
        let bus = Arc::clone(&self.app.sockets.bus);
        let purged = match after {
            Some(_) => match bus.purged_through().await {
                Ok(purged) => purged,
                Err(e) => return unavailable(sink, &head, e, ping).await,
            },
            None => 0,
        };
        if let Some(after) = after.filter(|after| *after > bus.cursor()) {
            let error = ErrorObject::refused(
                "Invalid after.".to_owned(),
                format!(
                    "after {after} is beyond the last push sent ({}); give the id of a push \
                     this bus sent, or leave after out to hear pushes from now on",
                    bus.cursor()
                ),
                Some("after"),
            );
            return answer_now(sink, &head, error, ping).await;
        }
        let mut response = serde_json::json!({
            "success": true,
            "subscribed": match &audience {
                Audience::Agent(user) => serde_json::json!({"UserID": user.as_str()}),
                Audience::All => serde_json::json!({"all": true}),
            },
        });
        if let Some(after) = after {
            response["after"] = after.into();
            if after < purged {
                response["gap"] = serde_json::json!({
                    "purged_through": purged,
                    "detail": format!(
                        "pushes {} to {purged} are older than the retention period and were \
                         deleted; the replay starts after {purged}",
                        after + 1
                    ),
                });
            }
        }
        send(sink, control_reply(&head, response), ping).await?;
        // Catch up from the store until the hub has delivered nothing later, then join it.
        let mut last = after.map(|after| after.max(purged));
        let subscription = loop {
            match bus.join(audience.clone(), last) {
                Ok((subscription, from)) => {
                    last = Some(from);
                    break subscription;
                }
                Err(cursor) => {
                    let mut from = last.unwrap_or(cursor);
                    while from < cursor {
                        let page = match bus.page(&audience, from, cursor).await {
                            Ok(page) => page,
                            Err(e) => return unavailable(sink, &head, e, ping).await,
                        };
                        let short = page.len() < crate::bus::PAGE as usize;
                        for frame in page {
                            from = frame.id;
                            self.last = frame.id;
                            send(sink, Message::Text(frame.text), ping).await?;
                        }
                        if short {
                            from = cursor;
                        }
                    }
                    last = Some(from);
                }
            }
        };
        self.last = last.unwrap_or(self.last);
        self.subscription = Some(subscription);
        Ok(())
    }

    /// Whether this socket's token may hear `audience`: an agent's pushes with the desktop
    /// role (only its own agent's, when the token names one), or the reporting or supervisor
    /// role; every push with the reporting or supervisor role.
    fn may_hear(&self, audience: &Audience) -> Result<(), Problem> {
        let Some(identity) = &self.identity else {
            return Ok(());
        };
        if identity.allows(ALL_PUSHES).is_ok() {
            return Ok(());
        }
        match audience {
            Audience::All => identity.allows(ALL_PUSHES),
            Audience::Agent(user) => {
                identity.allows(DESKTOP)?;
                match &identity.agent {
                    Some(own) if own != user.as_str() => Err(Problem::forbidden(format!(
                        "this token belongs to agent {own:?} and may hear only that agent's \
                         pushes, not {:?}'s",
                        user.as_str()
                    ))),
                    _ => Ok(()),
                }
            }
        }
    }

    /// The subscription fell behind by more than its queue holds.
    fn lagged(&self) -> Closing {
        let queue = self.app.sockets.bus.queue();
        Closing::With(
            1013,
            format!(
                "lagged: more than {queue} pushes behind; subscribe again with \"after\": {}",
                self.last
            ),
        )
    }
}

/// A refusal answered at once, in the LCM error envelope.
async fn answer_now(sink: &mut Sink, head: &ReplyHead, error: ErrorObject, ping: Duration) -> Step {
    let reply = crate::lcm::envelope::failure(head, error);
    let json = serde_json::to_string(&reply).expect("a reply serializes");
    send(sink, Message::Text(json.into()), ping).await
}

/// The pushes could not be read for a subscription.
async fn unavailable(
    sink: &mut Sink,
    head: &ReplyHead,
    e: crate::store::StoreError,
    ping: Duration,
) -> Step {
    tracing::error!(error = %e, "bus subscription failed");
    let error = ErrorObject::failed(format!("the pushes could not be read: {e}"));
    answer_now(sink, head, error, ping).await
}

/// `Ok` to go on; `Err` to close the socket.
type Step = Result<(), Closing>;

/// The next push of the subscription, if any: `None` once its queue was dropped as lagged.
async fn next_push(subscription: &mut Option<Subscription>) -> Option<Frame> {
    match subscription {
        Some(s) => s.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends `message`, or gives up after `limit`: a client that does not take its frames holds
/// nothing of the service's for longer.
async fn send(sink: &mut Sink, message: Message, limit: Duration) -> Step {
    match tokio::time::timeout(limit, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Closing::Gone),
        Err(_) => Err(Closing::Gone),
    }
}

/// The reply to a bus message: the envelope, with `response`.
fn control_reply(head: &ReplyHead, response: serde_json::Value) -> Message {
    let mut reply = serde_json::json!({
        "channel": crate::lcm::envelope::CHANNEL,
        "topic": head.topic,
        "subtopic": head.subtopic,
        "message": {"response": response},
    });
    if let Some(id) = &head.requestid {
        reply["requestid"] = serde_json::to_value(id).expect("an id serializes");
    }
    Message::Text(reply.to_string().into())
}

impl Problem {
    /// `GET /v1/bus` without a WebSocket handshake.
    pub fn not_a_websocket(why: String) -> Self {
        Self {
            status: StatusCode::UPGRADE_REQUIRED,
            error: ErrorObject::refused(
                "Upgrade required.".to_owned(),
                format!(
                    "GET /v1/bus is a WebSocket: connect with a WebSocket client \
                     (Connection: Upgrade, Upgrade: websocket) ({why})"
                ),
                None,
            ),
        }
    }

    /// `--max-bus-clients` sockets are open.
    pub fn bus_full(max: usize) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: ErrorObject::failed(format!(
                "all {max} bus sockets allowed at once (--max-bus-clients) are open; try again \
                 shortly"
            )),
        }
    }
}
