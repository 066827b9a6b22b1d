//! Slow, stuck and greedy clients, tried as an attacker would: no client can keep the others
//! out. Half-open connections past `--max-connections` make room for a normal request and
//! are closed after `--header-timeout`; an address past `--max-connections-per-peer` is
//! answered 503 at once; at the cap an idle connection is closed to make room, a busy one
//! never is, and when all are busy a newcomer is answered 503 at once.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{spawn_app_with, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn address(app: &TestApp) -> SocketAddr {
    app.base.trim_start_matches("http://").parse().unwrap()
}

/// A connection from `from`, a loopback address of the test's choosing.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the server closes the connection (end of file, or a reset); what was read.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection before the deadline");
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads one whole response (head, and the body its `content-length` gives).
async fn response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&seen).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return text;
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed mid-response: {text}");
        seen.extend_from_slice(&chunk[..n]);
    }
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: redial\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_past_the_cap_cannot_keep_a_normal_request_out() {
    let app = spawn_app_with(&["--max-connections", "16", "--header-timeout", "3s"]).await;
    let to = address(&app);
    // A request line and one header, then nothing: more such connections than the cap.
    let mut half_open = Vec::new();
    for _ in 0..24 {
        let mut stream = TcpStream::connect(to).await.unwrap();
        stream
            .write_all(b"POST /v1/lcm HTTP/1.1\r\nhost: redial\r\n")
            .await
            .unwrap();
        half_open.push(stream);
    }
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let served = tokio::time::timeout(
        Duration::from_secs(1),
        other.get(app.url("/healthz")).send(),
    )
    .await
    .expect("another client is served within a second")
    .unwrap();
    assert_eq!(served.status(), 200);
    // Each half-open connection is closed: to make room, or once its head is overdue.
    for stream in &mut half_open {
        let said = until_closed(stream, Duration::from_secs(15)).await;
        assert!(
            said.is_empty(),
            "a half-open connection is closed without a reply: {said}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_cap_is_answered_503_at_once() {
    let app = spawn_app_with(&["--max-connections-per-peer", "4"]).await;
    let to = address(&app);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(to).await.unwrap());
    }
    let mut fifth = TcpStream::connect(to).await.unwrap();
    fifth.write_all(HEALTH).await.unwrap();
    let reply = until_closed(&mut fifth, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("retry-after: 1"), "{reply}");
    assert!(reply.contains("--max-connections-per-peer"), "{reply}");
    assert!(reply.contains("\"type\":\"Server_Error\""), "{reply}");
    // Another address is not held to this one's count.
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), to).await;
    other.write_all(HEALTH).await.unwrap();
    assert!(response(&mut other).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_an_idle_connection_makes_room() {
    let app = spawn_app_with(&["--max-connections", "1"]).await;
    let to = address(&app);
    let mut idle = TcpStream::connect(to).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    assert!(response(&mut idle).await.starts_with("HTTP/1.1 200"));
    // Kept alive and idle; a newcomer takes its place.
    let mut newcomer = TcpStream::connect(to).await.unwrap();
    newcomer.write_all(HEALTH).await.unwrap();
    assert!(response(&mut newcomer).await.starts_with("HTTP/1.1 200"));
    assert_eq!(until_closed(&mut idle, Duration::from_secs(5)).await, "");
}

/// Bytes the server has not read yet from the connection whose client end is `client`, from
/// the kernel's table of TCP sockets.
fn unread_by_server(server: SocketAddr, client: SocketAddr) -> Option<u64> {
    let hex = |a: SocketAddr| {
        let IpAddr::V4(ip) = a.ip() else {
            unreachable!()
        };
        format!("{:08X}:{:04X}", u32::from_le_bytes(ip.octets()), a.port())
    };
    let (local, remote) = (hex(server), hex(client));
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f[1] == local && f[2] == remote)
                .then(|| u64::from_str_radix(f[4].split(':').nth(1).unwrap(), 16).unwrap())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_connection_is_never_closed_and_a_newcomer_is_answered_503() {
    let app = spawn_app_with(&["--max-connections", "1"]).await;
    let to = address(&app);
    let body = br#"{"consumer": "d", "wait_ms": 30000}"#;
    let mut polling = TcpStream::connect(to).await.unwrap();
    let head = format!(
        "POST /v1/queue/lease HTTP/1.1\r\nhost: redial\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    polling.write_all(head.as_bytes()).await.unwrap();
    polling.write_all(body).await.unwrap();
    // Once the server has read the whole request, the long-poll is in hand.
    let client = polling.local_addr().unwrap();
    common::until(Duration::from_secs(5), "the lease to be read", || {
        unread_by_server(to, client) == Some(0)
    })
    .await;
    let mut newcomer = TcpStream::connect(to).await.unwrap();
    newcomer.write_all(HEALTH).await.unwrap();
    let reply = until_closed(&mut newcomer, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("--max-connections"), "{reply}");
    // The long-poll was left alone: the shutdown ends its wait, and it is answered.
    let (_dir, _clock) = app.stop().await;
    let answer = until_closed(&mut polling, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("{\"events\":[]}"), "{answer}");
}
