//! Hostile clients: ingest from one address while other addresses hold more half-open
//! connections (a request line and one header, then nothing) than `--max-connections`, against
//! the same ingest on a quiet server. What the connection limits cost the clients that behave:
//! each of their new connections makes room by closing the longest idle half-open one.

use std::path::Path;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::ingest::{drive, lcm_body, register_calls, Load};
use crate::{process, tomorrow, Plan};

pub struct Hostile {
    pub max_connections: usize,
    pub half_open: usize,
    pub quiet: Load,
    pub under_attack: Load,
}

/// Opens `n` half-open connections to `address`, spread over three other loopback
/// addresses, and hands them back as standard sockets held open by the caller.
fn half_open(address: std::net::SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            let socket = TcpSocket::new_v4().expect("a socket");
            let from = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % 3) as u8);
            socket.bind((from, 0).into()).expect("a loopback address");
            let Ok(mut stream) = socket.connect(address).await else {
                continue;
            };
            // Refused connections are answered and closed by the server; those are not held.
            if stream
                .write_all(b"POST /v1/lcm HTTP/1.1\r\nhost: redial\r\n")
                .await
                .is_ok()
            {
                held.push(stream.into_std().expect("a standard socket"));
            }
        }
        held
    })
}

pub fn hostile(scratch: &Path, plan: &Plan) -> Hostile {
    let (max_connections, half_open_n, requests) = if plan.quick {
        (128, 150, 1_000)
    } else {
        (1024, 1_100, 20_000)
    };
    let db = scratch.join("hostile.db");
    register_calls(&db, 2 * requests);
    let max = max_connections.to_string();
    let server = process::spawn_server(&db, &["--max-connections", &max]);
    let url = server.url("/v1/lcm");
    let address = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let day = tomorrow();
    let bodies = |from: usize| (from..from + requests).map(|i| lcm_body(i, &day)).collect();
    let quiet = drive(&url, bodies(0), 16);
    let held = half_open(address, half_open_n);
    let under_attack = drive(&url, bodies(requests), 16);
    let half_open = held.len();
    drop(held);
    server.terminate();
    Hostile {
        max_connections,
        half_open,
        quiet,
        under_attack,
    }
}
