//! The HTTP layer: one request/response exchange, and the r2d2 manager that pools connections.
//!
//! A pooled "connection" is a ureq [`Agent`] allowed one idle keep-alive socket, so the pool size
//! bounds both concurrent requests and open sockets. r2d2 checks a connection with a heartbeat
//! when it is checked out; a connection whose request failed below HTTP is marked broken and
//! dropped, so a restarted server is reached again on the next call.

use std::time::{Duration, SystemTime};

use chromalite_core::{Error, Result};
use serde_json::Value;
use ureq::Agent;

use crate::errors::{self, Subject};
use crate::options::{AuthHeader, RemoteOptions, Token};

/// Largest response body accepted; a `get` of a big collection with embeddings can be large, but
/// an unbounded read would let a broken server exhaust memory.
const MAX_BODY: u64 = 4 << 30;

/// The HTTP verbs the v2 API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// One API call: verb, path below the base URL, query, JSON body and what it is about.
#[derive(Debug)]
pub(crate) struct Call {
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
    pub subject: Subject,
}

impl Call {
    pub fn new(method: Method, path: String, subject: Subject) -> Call {
        Call { method, path, query: Vec::new(), body: None, subject }
    }

    #[must_use]
    pub fn body(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }

    #[must_use]
    pub fn query(mut self, key: &'static str, value: Option<impl ToString>) -> Call {
        if let Some(v) = value {
            self.query.push((key, v.to_string()));
        }
        self
    }
}

/// Where and how to send requests; shared by every pooled connection.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub base_url: String,
    token: Option<Token>,
    auth_header: AuthHeader,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl Endpoint {
    pub fn new(opts: &RemoteOptions) -> Result<Endpoint> {
        Ok(Endpoint {
            base_url: opts.base_url()?,
            token: opts.token.clone(),
            auth_header: opts.auth_header,
            connect_timeout: opts.connect_timeout,
            read_timeout: opts.read_timeout,
        })
    }

    /// The auth scheme in use, for `Debug` output (never the token).
    pub fn auth_description(&self) -> &'static str {
        match (&self.token, self.auth_header) {
            (None, _) => "none",
            (Some(_), AuthHeader::XChromaToken) => "x-chroma-token",
            (Some(_), AuthHeader::Bearer) => "bearer",
        }
    }

    fn agent(&self) -> Agent {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.read_timeout))
            .timeout_recv_body(Some(self.read_timeout))
            .timeout_send_body(Some(self.read_timeout))
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            .user_agent(concat!("chromalite/", env!("CARGO_PKG_VERSION")))
            .build();
        Agent::new_with_config(config)
    }

    /// Runs `call` on `conn`; returns the JSON body (`Null` when empty).
    pub fn send(&self, conn: &mut HttpConn, call: &Call) -> Result<Value> {
        // Broken until a whole response was read: a failure below HTTP leaves the socket in an
        // unknown state, and r2d2 then drops the connection instead of reusing it.
        conn.broken = true;
        conn.used = true;
        let (status, retry_after, bytes) = self.exchange(&conn.agent, call)?;
        conn.broken = false;
        if !(200..300).contains(&status) {
            let secret = self.token.as_ref().map(Token::expose);
            return Err(errors::from_status(status, retry_after, &bytes, &call.subject, secret));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("server sent invalid JSON for {}: {e}", call.path)))
    }

    /// Sends the request and reads the whole response: status, `Retry-After`, body.
    fn exchange(&self, agent: &Agent, call: &Call) -> Result<(u16, Option<Duration>, Vec<u8>)> {
        let url = format!("{}{}", self.base_url, call.path);
        let transport = |e: ureq::Error| errors::from_transport(&e, &self.base_url);
        let response = match call.method {
            Method::Get => self.with_headers(agent.get(&url), call).call(),
            Method::Delete => self.with_headers(agent.delete(&url), call).call(),
            Method::Post | Method::Put => {
                let builder = if call.method == Method::Post { agent.post(&url) } else { agent.put(&url) };
                let body = serde_json::to_vec(call.body.as_ref().unwrap_or(&Value::Null))
                    .map_err(|e| Error::Internal(format!("cannot encode request: {e}")))?;
                self.with_headers(builder, call).header("content-type", "application/json").send(&body[..])
            }
        }
        .map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| errors::parse_retry_after(v, SystemTime::now()));
        let bytes = response.into_body().with_config().limit(MAX_BODY).read_to_vec().map_err(transport)?;
        Ok((status, retry_after, bytes))
    }

    fn with_headers<B>(&self, mut req: ureq::RequestBuilder<B>, call: &Call) -> ureq::RequestBuilder<B> {
        for (k, v) in &call.query {
            req = req.query(*k, v);
        }
        req = req.header("accept", "application/json");
        match (&self.token, self.auth_header) {
            (None, _) => req,
            (Some(t), AuthHeader::XChromaToken) => req.header("x-chroma-token", t.expose()),
            (Some(t), AuthHeader::Bearer) => req.header("authorization", format!("Bearer {}", t.expose())),
        }
    }

    /// `GET /api/v2/heartbeat`: the server's clock in nanoseconds.
    pub fn heartbeat(&self, conn: &mut HttpConn) -> Result<u64> {
        let v = self.send(conn, &Call::new(Method::Get, "/api/v2/heartbeat".into(), Subject::Server))?;
        v.get("nanosecond heartbeat")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::Internal(format!("unexpected heartbeat answer: {v}")))
    }
}

/// A pooled connection: an agent holding at most one keep-alive socket.
pub(crate) struct HttpConn {
    agent: Agent,
    broken: bool,
    /// Whether a request went out on it; a fresh agent has no socket to check yet.
    used: bool,
}

impl std::fmt::Debug for HttpConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConn").field("broken", &self.broken).finish_non_exhaustive()
    }
}

/// r2d2's view of the server.
#[derive(Debug)]
pub(crate) struct Manager {
    pub endpoint: std::sync::Arc<Endpoint>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = HttpConn;
    type Error = Error;

    // No network here: sockets open lazily on the first request, so creating the pool (and a
    // client) works while the server is down, and a checkout never waits on a dead server.
    fn connect(&self) -> Result<HttpConn> {
        Ok(HttpConn { agent: self.endpoint.agent(), broken: false, used: false })
    }

    // r2d2 checks every checkout, fresh connections included. Probing a fresh agent would only
    // open the socket the request is about to open anyway, and while the server is down r2d2
    // would keep replacing and re-probing until the checkout timeout: the caller should get
    // `Unavailable` from its own request at once instead.
    fn is_valid(&self, conn: &mut HttpConn) -> Result<()> {
        if !conn.used {
            return Ok(());
        }
        self.endpoint.heartbeat(conn).map(|_| ())
    }

    fn has_broken(&self, conn: &mut HttpConn) -> bool {
        conn.broken
    }
}

/// Percent-encodes one path segment (tenant, database or collection name).
pub(crate) fn segment(s: &str) -> String {
    use std::fmt::Write;
    s.bytes().fold(String::with_capacity(s.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_escaped() {
        assert_eq!(super::segment("my-db_1.x"), "my-db_1.x");
        assert_eq!(super::segment("a b/c?é"), "a%20b%2Fc%3F%C3%A9");
    }
}
