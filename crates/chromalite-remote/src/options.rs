//! How to reach a Chroma server: address, credentials, timeouts and pool size.

use std::fmt;
use std::time::Duration;

use chromalite_core::{Error, Result};

/// A secret API token. Its `Debug` and `Display` never show the value, so options, backends and
/// errors can be logged freely.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token value.
    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into())
    }

    /// The raw value, for the request header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which header carries the token; Chroma servers accept either, depending on their
/// `chroma_auth_token_transport_header` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthHeader {
    /// `x-chroma-token: <token>` (Chroma's default).
    #[default]
    XChromaToken,
    /// `Authorization: Bearer <token>`.
    Bearer,
}

/// Settings of a [`RemoteBackend`](crate::RemoteBackend).
///
/// ```
/// use std::time::Duration;
/// use chromalite_remote::{AuthHeader, RemoteOptions};
///
/// let opts = RemoteOptions::new("https://chroma.example.com")
///     .token("s3cret")
///     .auth_header(AuthHeader::Bearer)
///     .connect_timeout(Duration::from_secs(2))
///     .read_timeout(Duration::from_secs(30));
/// assert!(!format!("{opts:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub(crate) url: String,
    pub(crate) token: Option<Token>,
    pub(crate) auth_header: AuthHeader,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) pool_size: u32,
    pub(crate) checkout_timeout: Duration,
}

impl RemoteOptions {
    /// Options for the server at `url` (`http://host:port` or `https://...`; a trailing `/` or
    /// `/api/v2` is accepted), without a token, with 5 s connect and 60 s read timeouts and up to
    /// 8 pooled connections.
    pub fn new(url: impl Into<String>) -> RemoteOptions {
        RemoteOptions {
            url: url.into(),
            token: None,
            auth_header: AuthHeader::default(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_mins(1),
            pool_size: 8,
            checkout_timeout: Duration::from_secs(30),
        }
    }

    /// Sends `token` with every request.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> RemoteOptions {
        self.token = Some(Token::new(token));
        self
    }

    /// Sends `token` if there is one (convenient with an optional command-line flag).
    #[must_use]
    pub fn maybe_token(self, token: Option<impl Into<String>>) -> RemoteOptions {
        match token {
            Some(t) => self.token(t),
            None => self,
        }
    }

    /// Chooses the header that carries the token.
    #[must_use]
    pub fn auth_header(mut self, header: AuthHeader) -> RemoteOptions {
        self.auth_header = header;
        self
    }

    /// Time allowed to open a TCP connection (and finish the TLS handshake).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> RemoteOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for the server to answer a request and send the response body.
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> RemoteOptions {
        self.read_timeout = timeout;
        self
    }

    /// Most connections kept to the server (the most concurrent requests); at least 1.
    #[must_use]
    pub fn pool_size(mut self, size: u32) -> RemoteOptions {
        self.pool_size = size.max(1);
        self
    }

    /// How long a call waits for a free pooled connection when all are busy.
    #[must_use]
    pub fn checkout_timeout(mut self, timeout: Duration) -> RemoteOptions {
        self.checkout_timeout = timeout;
        self
    }

    /// The server's base address, normalised: scheme checked, trailing `/` and `/api/v2` removed.
    pub(crate) fn base_url(&self) -> Result<String> {
        let url = self.url.trim();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| Error::invalid(format!("server URL must start with http:// or https://, got {url:?}")))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::invalid(format!("server URL has no host: {url:?}")));
        }
        if rest.split('/').next().is_some_and(|authority| authority.contains('@')) {
            // Credentials in the URL would end up in logs and error messages; use `token`.
            return Err(Error::invalid("server URL must not contain user:password@; pass the token with --token"));
        }
        let trimmed = url.trim_end_matches('/');
        Ok(trimmed.strip_suffix("/api/v2").unwrap_or(trimmed).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_normalised() {
        for (given, want) in [
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
            ("http://h:1/", "http://h:1"),
            ("https://h/api/v2", "https://h"),
            ("https://h/prefix/api/v2/", "https://h/prefix"),
        ] {
            assert_eq!(RemoteOptions::new(given).base_url().unwrap(), want);
        }
        for bad in ["h:8000", "ftp://h", "http://", "http://u:p@h"] {
            assert_eq!(
                RemoteOptions::new(bad).base_url().unwrap_err().kind(),
                chromalite_core::ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn token_is_redacted() {
        let opts = RemoteOptions::new("http://h").token("tok-123");
        assert!(!format!("{opts:?}").contains("tok-123"));
        assert_eq!(opts.token.as_ref().map(Token::expose), Some("tok-123"));
        assert_eq!(Token::new("x").to_string(), "<redacted>");
    }
}
