//! A minimal blocking HTTP/1.1 client over netd's unix socket, just enough for
//! `POST /cni`: one request per connection (`Connection: close`), response body framed by
//! `Content-Length`, chunked encoding, or end of stream. Kept here (no hyper, no runtime) so
//! `netd-cni`, which runs once per container operation, stays small and starts fast.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::CniError;

/// netd's default socket.
pub const DEFAULT_SOCKET: &str = "/run/netd/netd.sock";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached (missing, refused, permission).
    #[error("cannot connect to netd at {}: {source}", path.display())]
    Connect { path: PathBuf, source: io::Error },
    /// The exchange failed after connecting (timeout, reset).
    #[error("talking to netd at {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The answer was not HTTP as expected.
    #[error("bad HTTP answer from netd: {0}")]
    Protocol(String),
}

/// Socket path: the config's `socket`, else `NETD_HOST` (`unix:///path` or a plain path),
/// else [`DEFAULT_SOCKET`]. Another `NETD_HOST` scheme is code 4.
pub fn resolve_socket(
    config_socket: Option<&str>,
    netd_host: Option<&str>,
) -> Result<PathBuf, CniError> {
    if let Some(s) = config_socket.filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(s.strip_prefix("unix://").unwrap_or(s)));
    }
    match netd_host.filter(|s| !s.is_empty()) {
        None => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(h) => {
            if let Some(p) = h.strip_prefix("unix://") {
                Ok(PathBuf::from(p))
            } else if h.contains("://") {
                Err(CniError::invalid_env(format!(
                    "NETD_HOST {h:?}: only unix:// sockets are supported"
                )))
            } else {
                Ok(PathBuf::from(h))
            }
        }
    }
}

/// POSTs JSON to `path` on the socket; returns the status code and body.
pub fn post_json(
    socket: &Path,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    let io_err = |source| ClientError::Io {
        path: socket.to_path_buf(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: netd\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(io_err)?;
    stream.write_all(body).map_err(io_err)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io_err)?;
    parse_response(&raw)
}

/// Parses a full HTTP/1.1 response.
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
    let proto = |m: &str| ClientError::Protocol(m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| proto("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| proto("headers are not UTF-8"))?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().unwrap_or_default().starts_with("HTTP/1.") {
        return Err(proto("not an HTTP/1.x status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| proto("bad status code"))?;
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| proto("bad Content-Length"))?,
            );
        } else if k.eq_ignore_ascii_case("transfer-encoding")
            && v.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| proto("body shorter than Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, ClientError> {
    let proto = |m: &str| ClientError::Protocol(m.to_string());
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| proto("truncated chunk size"))?;
        let size_str = std::str::from_utf8(&data[..eol]).map_err(|_| proto("bad chunk size"))?;
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| proto("bad chunk size"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or_else(|| proto("truncated chunk"))?;
        out.extend_from_slice(chunk);
        data = data
            .get(size + 2..)
            .ok_or_else(|| proto("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_eof_bodies() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(r).unwrap(), (200, b"{}".to_vec()));
        let r = b"HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (500, b"abcde".to_vec()));
        let r = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(r).unwrap(), (404, b"nope".to_vec()));
        for bad in [
            &b"garbage"[..],
            b"SMTP 200\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_response(bad).is_err());
        }
    }

    #[test]
    fn socket_resolution() {
        assert_eq!(
            resolve_socket(Some("/a.sock"), Some("/b")).unwrap(),
            PathBuf::from("/a.sock")
        );
        assert_eq!(
            resolve_socket(None, Some("unix:///b.sock")).unwrap(),
            PathBuf::from("/b.sock")
        );
        assert_eq!(
            resolve_socket(Some(""), Some("/c.sock")).unwrap(),
            PathBuf::from("/c.sock")
        );
        assert_eq!(
            resolve_socket(None, None).unwrap(),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            resolve_socket(None, Some("tcp://1.2.3.4:1"))
                .unwrap_err()
                .code,
            4
        );
    }
}
