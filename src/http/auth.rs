//! Bearer tokens and roles (`--tokens FILE`): the file, and the check of a request's token
//! against the roles its route needs (declared beside the routes, `http::router`).

use std::path::Path;

use axum::http::{header, HeaderMap};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::error::Problem;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Desktop,
    Telephony,
    Dialer,
    Reporting,
    Supervisor,
    Admin,
}

impl Role {
    const ALL: [Role; 6] = [
        Role::Desktop,
        Role::Telephony,
        Role::Dialer,
        Role::Reporting,
        Role::Supervisor,
        Role::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Desktop => "desktop",
            Role::Telephony => "telephony",
            Role::Dialer => "dialer",
            Role::Reporting => "reporting",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The tokens from the file, each with the bit set of its roles. The file holds one token per
/// line followed by its roles, comma-separated, and optionally the agent a desktop's token
/// belongs to:
///
/// ```text
/// # token                           roles              agent / name
/// 6f1c0c2e9a7b4d58b1e3a9d2c4f60718  desktop            agent=testagent
/// b7d2e4f6a8c0e2f4a6b8d0f2a4c6e8f0  dialer,reporting
/// 0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d  supervisor         name=maria
/// ```
///
/// Roles: `desktop` (`/v1/lcm` and the bus), `telephony` (agents and calls), `dialer` (the
/// queue, attempts and cancels, reading callbacks), `reporting` (finding and reading
/// callbacks, the do-not-call list, every push on the bus), `supervisor` (the same, and
/// changing callbacks and the do-not-call list), `admin` (everything). A token with `agent=`
/// may subscribe on the bus to that agent's pushes only, and read only that agent's
/// callbacks; `name=` is who the audit names for the token's changes. Tokens are compared in
/// constant time (`subtle`), against every known token, and are never logged. The comparison
/// does reveal whether the presented token has the length of some known one: a length is not
/// a secret worth the cost of hiding it.
pub struct Tokens {
    entries: Vec<Entry>,
}

struct Entry {
    token: Vec<u8>,
    roles: u8,
    agent: Option<String>,
    name: String,
}

/// Who presented a known token: its roles, and the agent it belongs to, if the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    roles: u8,
    pub agent: Option<String>,
    /// Who the audit says made a change: `name=` in the file, else the token's line.
    pub name: String,
}

impl Identity {
    /// Whether this token may use what `access` allows: one of its roles, or `admin`.
    pub fn allows(&self, access: Access) -> Result<(), Problem> {
        let Access::Roles(needed) = access else {
            return Ok(());
        };
        if self.has(Role::Admin) || needed.iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        let names: Vec<&str> = needed.iter().map(|r| r.name()).collect();
        Err(Problem::forbidden(if names.is_empty() {
            "this path needs the admin role".to_owned()
        } else {
            format!(
                "this token's roles do not include {} (or admin)",
                names.join(" or ")
            )
        }))
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles & role.bit() != 0
    }

    /// The names of its roles.
    pub fn role_names(&self) -> Vec<&'static str> {
        Role::ALL
            .into_iter()
            .filter(|r| self.has(*r))
            .map(Role::name)
            .collect()
    }
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
            let (Some(token), Some(roles)) = (parts.next(), parts.next()) else {
                return Err(format!(
                    "line {}: expected a token and its roles, e.g. `<token> desktop,dialer`, \
                     and optionally `agent=<UserID>` and `name=<who>`",
                    n + 1
                ));
            };
            let (mut agent, mut name) = (None, None);
            for part in parts {
                let (key, value) = part.split_once('=').unwrap_or((part, ""));
                let slot = match key {
                    "agent" => &mut agent,
                    "name" => &mut name,
                    _ => {
                        return Err(format!(
                            "line {}: after the roles come agent=<UserID> and name=<who>; \
                             {key:?} is neither",
                            n + 1
                        ))
                    }
                };
                if value.is_empty() || value.chars().count() > 64 || slot.is_some() {
                    return Err(format!(
                        "line {}: {key}= takes 1 to 64 characters, once",
                        n + 1
                    ));
                }
                *slot = Some(value.to_owned());
            }
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
                             dialer, reporting, supervisor or admin",
                            n + 1
                        )
                    })?;
                bits |= role.bit();
            }
            entries.push(Entry {
                token: token.as_bytes().to_vec(),
                roles: bits,
                agent,
                name: name.unwrap_or_else(|| format!("token on line {}", n + 1)),
            });
        }
        if entries.is_empty() {
            return Err("no tokens in the file".into());
        }
        Ok(Self { entries })
    }

    /// Who `presented` is, looked up without revealing through timing which token (or how
    /// much of one) matched: every entry is compared, every byte of it.
    pub fn identify(&self, presented: &[u8]) -> Option<Identity> {
        let mut index = 0u32;
        let mut found = subtle::Choice::from(0);
        for (i, entry) in self.entries.iter().enumerate() {
            let hit = entry.token.as_slice().ct_eq(presented);
            index = u32::conditional_select(&index, &(i as u32), hit);
            found |= hit;
        }
        bool::from(found).then(|| {
            let entry = &self.entries[index as usize];
            Identity {
                roles: entry.roles,
                agent: entry.agent.clone(),
                name: entry.name.clone(),
            }
        })
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, with or without a token (`/healthz`).
    Open,
    /// A token with one of these roles, or `admin`. None listed: `admin` only.
    Roles(&'static [Role]),
}

/// The bearer token of a request's headers, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
}

/// Who `presented` is: 401 when tokens are configured and it is missing or unknown. `None`
/// when no tokens are configured (loopback, or `--insecure-no-auth`): everything is allowed.
pub fn authenticate(
    tokens: Option<&Tokens>,
    presented: Option<&[u8]>,
) -> Result<Option<Identity>, Problem> {
    let Some(tokens) = tokens else {
        return Ok(None);
    };
    match presented.and_then(|t| tokens.identify(t)) {
        Some(identity) => Ok(Some(identity)),
        None => Err(Problem::unauthorized(if presented.is_some() {
            "the bearer token is not known"
        } else {
            "send a bearer token: Authorization: Bearer <token>"
        })),
    }
}

/// Whether the request's bearer token allows `access`: without a known token 401, with one
/// that lacks the route's roles 403, both in the route's envelope. With no tokens configured
/// (loopback, or `--insecure-no-auth`), every request is allowed.
pub fn check(
    tokens: Option<&Tokens>,
    access: Access,
    headers: &HeaderMap,
) -> Result<Caller, Problem> {
    if access == Access::Open {
        return Ok(Caller(None));
    }
    let identity = authenticate(tokens, bearer(headers))?;
    if let Some(identity) = &identity {
        identity.allows(access)?;
    }
    Ok(Caller(identity))
}

/// Who sent a request, as the edge found it, for the handlers that need to know: `None` when
/// no tokens are configured (every request is allowed).
#[derive(Debug, Clone, Default)]
pub struct Caller(pub Option<Identity>);

impl Caller {
    /// The name the audit records: the token's, or `local` without tokens.
    pub fn name(&self) -> String {
        self.0
            .as_ref()
            .map_or_else(|| "local".to_owned(), |i| i.name.clone())
    }

    /// The one agent whose callbacks this caller may read, when it may not read everyone's:
    /// a token whose only reading role is `desktop` reads its own agent's (`agent=`), and a
    /// desktop token that names no agent reads none.
    pub fn reads_only(&self) -> Result<Option<&str>, Problem> {
        let Some(identity) = &self.0 else {
            return Ok(None);
        };
        let everyone = [Role::Admin, Role::Reporting, Role::Supervisor, Role::Dialer];
        if everyone.into_iter().any(|r| identity.has(r)) {
            return Ok(None);
        }
        match &identity.agent {
            Some(agent) => Ok(Some(agent)),
            None => Err(Problem::forbidden(
                "a desktop token reads only its own agent's callbacks, and this one names no \
                 agent (agent=<UserID> in the tokens file)"
                    .to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_roles_and_refuses_mistakes_without_echoing_tokens() {
        let t =
            Tokens::parse("# comment\n\nabcdefghijklmnop desktop,dialer\nqrstuvwxyz012345 admin\n")
                .unwrap();
        let roles = |token: &[u8]| t.identify(token).map(|i| i.roles);
        assert_eq!(
            roles(b"abcdefghijklmnop"),
            Some(Role::Desktop.bit() | Role::Dialer.bit())
        );
        assert_eq!(roles(b"qrstuvwxyz012345"), Some(Role::Admin.bit()));
        assert_eq!(roles(b"abcdefghijklmno"), None);
        assert_eq!(roles(b"abcdefghijklmnopq"), None);
        assert_eq!(roles(b""), None);
        let bound = Tokens::parse("abcdefghijklmnop desktop agent=testagent\n").unwrap();
        assert_eq!(
            bound
                .identify(b"abcdefghijklmnop")
                .unwrap()
                .agent
                .as_deref(),
            Some("testagent")
        );
        assert!(Tokens::parse("abcdefghijklmnop desktop testagent\n").is_err());
        let e = Tokens::parse("secret-secret-secret sales").unwrap_err();
        assert!(e.contains("line 1") && !e.contains("secret"), "{e}");
        let e = Tokens::parse("short desktop").unwrap_err();
        assert!(!e.contains("short desktop"), "{e}");
        assert!(Tokens::parse("# nothing\n").is_err());
    }

    #[test]
    fn a_route_admits_its_roles_and_admin() {
        let t = Tokens::parse("desktop-desktop-1 desktop\nadmin-admin-admin admin\n").unwrap();
        let headers = |token: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
            h
        };
        let desktop = Access::Roles(&[Role::Desktop]);
        assert!(check(Some(&t), desktop, &headers("desktop-desktop-1")).is_ok());
        assert!(check(Some(&t), desktop, &headers("admin-admin-admin")).is_ok());
        let dialer = check(
            Some(&t),
            Access::Roles(&[Role::Dialer]),
            &headers("desktop-desktop-1"),
        );
        assert_eq!(dialer.unwrap_err().status, 403);
        let admin_only = Access::Roles(&[]);
        assert!(check(Some(&t), admin_only, &headers("admin-admin-admin")).is_ok());
        assert_eq!(
            check(Some(&t), admin_only, &headers("desktop-desktop-1"))
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            check(Some(&t), desktop, &HeaderMap::new())
                .unwrap_err()
                .status,
            401
        );
        assert!(check(Some(&t), Access::Open, &HeaderMap::new()).is_ok());
        assert!(
            check(None, desktop, &HeaderMap::new()).is_ok(),
            "no tokens configured"
        );
    }
}
