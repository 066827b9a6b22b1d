//! A lean HTTP/1.1 keep-alive client for the ingest load generator.
//!
//! The load generator shares the two cores with the server, so every microsecond it spends is
//! taken from redial. A general client (reqwest) parsed a URL, built a header map and boxed a
//! body per request, and cost more CPU per request than the server's own HTTP layer. Here a
//! request is bytes prepared before the clock starts, and a reply is read only as far as its
//! status line and `Content-Length`: what `wrk` and `h2load` do.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A complete `POST` request with a JSON body, ready to write.
pub fn post_json(address: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// One keep-alive connection, used for one request at a time.
pub struct Connection {
    address: String,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
}

impl Connection {
    pub fn new(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            stream: None,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Sends `request` and reads the whole reply; returns its status code. A connection the
    /// server closed is opened again for the next request.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<u16> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(request).await?;
        self.buffer.clear();
        let head = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            read_more(stream, &mut self.buffer).await?;
        };
        let reply = Head::parse(&self.buffer[..head])?;
        while self.buffer.len() < head + reply.content_length {
            read_more(stream, &mut self.buffer).await?;
        }
        if reply.close {
            self.stream = None;
        }
        Ok(reply.status)
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<()> {
    if stream.read_buf(buffer).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection mid-reply",
        ));
    }
    Ok(())
}

/// What the load generator needs of a reply's head.
struct Head {
    status: u16,
    content_length: usize,
    close: bool,
}

impl Head {
    fn parse(head: &[u8]) -> io::Result<Self> {
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} in reply head {:?}", String::from_utf8_lossy(head)),
            )
        };
        let text = std::str::from_utf8(head).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|l| l.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad("no HTTP/1.1 status line"))?;
        let (mut content_length, mut close) = (None, false);
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(bad("a chunked body (not supported)"));
            }
        }
        Ok(Self {
            status,
            content_length: content_length.ok_or_else(|| bad("no content-length"))?,
            close,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
