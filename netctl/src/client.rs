//! A small blocking client of netd's REST API over its unix socket.

use anyhow::{anyhow, Context, Result};
use plugin_api::rest;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub struct Client {
    http: reqwest::blocking::Client,
    socket: String,
}

/// `NETD_HOST` / `--host` may be `unix:///path` or a plain path.
pub fn socket_path(host: &str) -> String {
    host.strip_prefix("unix://").unwrap_or(host).to_string()
}

impl Client {
    pub fn new(host: &str) -> Result<Self> {
        let socket = socket_path(host);
        let http = reqwest::blocking::Client::builder()
            .unix_socket(socket.clone())
            .timeout(None)
            .build()
            .context("building HTTP client")?;
        Ok(Client { http, socket })
    }

    fn url(&self, path: &str) -> String {
        format!("http://netd{path}")
    }

    fn handle<T: DeserializeOwned>(
        &self,
        r: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<T> {
        let r = r.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach netd at {}: is the daemon running?",
                    self.socket
                )
            } else {
                anyhow!("request to netd failed: {e}")
            }
        })?;
        let status = r.status();
        let bytes = r.bytes().context("reading netd's answer")?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<rest::ErrorBody>(&bytes)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            return Err(anyhow!("{msg}"));
        }
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).with_context(|| format!("decoding netd's answer ({status})"))
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.handle(self.http.get(self.url(path)).send())
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let b = serde_json::to_vec(body)?;
        self.handle(
            self.http
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(b)
                .send(),
        )
    }

    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let r = self
            .http
            .get(self.url(path))
            .send()
            .map_err(|e| anyhow!("cannot reach netd at {}: {e}", self.socket))?;
        let ok = r.status().is_success();
        let b = r.bytes()?.to_vec();
        if ok {
            return Ok(b);
        }
        let msg = serde_json::from_slice::<rest::ErrorBody>(&b)
            .map(|e| e.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&b).into_owned());
        Err(anyhow!("{msg}"))
    }

    pub fn delete(&self, path: &str) -> Result<()> {
        self.handle::<serde_json::Value>(self.http.delete(self.url(path)).send())
            .map(|_| ())
    }
}

/// Percent-encode a path segment (names are [a-zA-Z0-9_.-], but be safe).
pub fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
