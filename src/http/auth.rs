//! Bearer tokens and roles (`--tokens FILE`).
//!
//! The file holds one token per line followed by its roles, comma-separated:
//!
//! ```text
//! # token                           roles
//! 6f1c0c2e9a7b4d58b1e3a9d2c4f60718  desktop
//! b7d2e4f6a8c0e2f4a6b8d0f2a4c6e8f0  dialer,reporting
//! ```
//!
//! Roles: `desktop` (`/v1/lcm`), `telephony` (agents and calls), `dialer` (the queue, attempts
//! and cancels, reading callbacks), `reporting` (reading callbacks), `admin` (everything).
//! `/healthz` is open. A request without a known token gets 401, one whose token lacks the
//! route's role 403, both with an envelope. Tokens are compared in constant time, against every
//! known token, and are never logged.

use std::path::Path;

use axum::extract::Request;
use axum::http::{header, Method};
use axum::response::Response;

use super::error::refusal;
use crate::lcm::LcmError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Desktop,
    Telephony,
    Dialer,
    Reporting,
    Admin,
}

impl Role {
    const ALL: [Role; 5] = [
        Role::Desktop,
        Role::Telephony,
        Role::Dialer,
        Role::Reporting,
        Role::Admin,
    ];

    fn name(self) -> &'static str {
        match self {
            Role::Desktop => "desktop",
            Role::Telephony => "telephony",
            Role::Dialer => "dialer",
            Role::Reporting => "reporting",
            Role::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The tokens from the file, each with the bit set of its roles.
pub struct Tokens {
    entries: Vec<(Vec<u8>, u8)>,
}

impl std::fmt::Debug for Tokens {
    /// Never the tokens themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} entries)", self.entries.len())
    }
}

impl Tokens {
    /// Reads the token file. Errors name the line, never the token on it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("tokens file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(token), Some(roles), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!(
                    "line {}: expected a token and its roles, e.g. `<token> desktop,dialer`",
                    n + 1
                ));
            };
            if token.len() < 16 {
                return Err(format!(
                    "line {}: the token is shorter than 16 characters",
                    n + 1
                ));
            }
            let mut bits = 0;
            for role in roles.split(',') {
                let role = Role::ALL
                    .into_iter()
                    .find(|r| r.name() == role)
                    .ok_or_else(|| {
                        format!(
                            "line {}: {role:?} is not a role; expected desktop, telephony, \
                             dialer, reporting or admin",
                            n + 1
                        )
                    })?;
                bits |= role.bit();
            }
            entries.push((token.as_bytes().to_vec(), bits));
        }
        if entries.is_empty() {
            return Err("no tokens in the file".into());
        }
        Ok(Self { entries })
    }

    /// The roles of `presented`, looked up without revealing through timing which token (or
    /// how much of one) matched: every entry is compared, every byte of it.
    fn roles_of(&self, presented: &[u8]) -> Option<u8> {
        let mut roles = 0u8;
        let mut found = 0u8;
        for (token, bits) in &self.entries {
            let hit = constant_time_eq(token, presented);
            let mask = 0u8.wrapping_sub(u8::from(hit));
            roles |= bits & mask;
            found |= mask;
        }
        (found != 0).then_some(roles)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The roles that may use a route; `None` for open routes.
fn allowed(method: &Method, path: &str) -> Option<&'static [Role]> {
    let roles: &'static [Role] = if path == "/healthz" {
        return None;
    } else if path == "/v1/lcm" {
        &[Role::Desktop]
    } else if path.starts_with("/v1/agents/") || path.starts_with("/v1/calls") {
        &[Role::Telephony]
    } else if path.starts_with("/v1/queue/") {
        &[Role::Dialer]
    } else if path.starts_with("/v1/callbacks/") && method == Method::GET {
        &[Role::Reporting, Role::Dialer]
    } else if path.starts_with("/v1/callbacks/") {
        &[Role::Dialer]
    } else {
        // Unknown paths: only an admin learns that they do not exist.
        &[]
    };
    Some(roles)
}

/// The refusal for `request` if its token does not allow it; `None` lets it through. With no
/// tokens configured (loopback, or `--insecure-no-auth`), every request goes through.
pub fn refuse(tokens: Option<&Tokens>, request: &Request) -> Option<Response> {
    let tokens = tokens?;
    let needed = allowed(request.method(), request.uri().path())?;
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let Some(roles) = presented.and_then(|t| tokens.roles_of(t)) else {
        let detail = if presented.is_some() {
            "the bearer token is not known"
        } else {
            "send a bearer token: Authorization: Bearer <token>"
        };
        return Some(refusal(
            request.uri().path(),
            LcmError::Unauthorized(detail.into()),
        ));
    };
    let admin = roles & Role::Admin.bit() != 0;
    if admin || needed.iter().any(|r| roles & r.bit() != 0) {
        return None;
    }
    let names: Vec<&str> = needed.iter().map(|r| r.name()).collect();
    let detail = if names.is_empty() {
        "this path needs the admin role".to_owned()
    } else {
        format!(
            "this token's roles do not include {} (or admin)",
            names.join(" or ")
        )
    };
    Some(refusal(request.uri().path(), LcmError::Forbidden(detail)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_roles_and_refuses_mistakes_without_echoing_tokens() {
        let t =
            Tokens::parse("# comment\n\nabcdefghijklmnop desktop,dialer\nqrstuvwxyz012345 admin\n")
                .unwrap();
        assert_eq!(
            t.roles_of(b"abcdefghijklmnop"),
            Some(Role::Desktop.bit() | Role::Dialer.bit())
        );
        assert_eq!(t.roles_of(b"qrstuvwxyz012345"), Some(Role::Admin.bit()));
        assert_eq!(t.roles_of(b"abcdefghijklmno"), None);
        assert_eq!(t.roles_of(b"abcdefghijklmnopq"), None);
        assert_eq!(t.roles_of(b""), None);
        let e = Tokens::parse("secret-secret-secret sales").unwrap_err();
        assert!(e.contains("line 1") && !e.contains("secret"), "{e}");
        let e = Tokens::parse("short desktop").unwrap_err();
        assert!(!e.contains("short desktop"), "{e}");
        assert!(Tokens::parse("# nothing\n").is_err());
    }

    #[test]
    fn routes_need_their_roles() {
        assert_eq!(allowed(&Method::GET, "/healthz"), None);
        assert_eq!(
            allowed(&Method::POST, "/v1/lcm"),
            Some(&[Role::Desktop][..])
        );
        assert_eq!(
            allowed(&Method::POST, "/v1/calls/x/end"),
            Some(&[Role::Telephony][..])
        );
        assert_eq!(
            allowed(&Method::GET, "/v1/callbacks/1"),
            Some(&[Role::Reporting, Role::Dialer][..])
        );
        assert_eq!(
            allowed(&Method::POST, "/v1/callbacks/1/attempts"),
            Some(&[Role::Dialer][..])
        );
        assert_eq!(allowed(&Method::GET, "/v2/other"), Some(&[][..]));
    }
}
