//! The whole of `netd-cni` as a function: read env + stdin, answer VERSION, validate
//! locally with [`parse_call`], forward the [`CniCall`] to netd's `POST /cni`, and turn the
//! answer into CNI output (result in the requested version, or error JSON) and an exit code.
//! The binary only wires this to the process; tests call it directly.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

use super::call::{call_from_env, parse_call};
use super::client::{post_json, resolve_socket, ClientError};
use super::env::Command;
use super::error::CniError;
use super::result::Result100;
use super::version::{version_output, CniVersion};
use crate::rest::ErrorBody;

/// Default time to wait for netd's answer; override with `NETD_CNI_TIMEOUT` (seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What the process prints on stdout and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub exit_code: i32,
}

impl Outcome {
    fn ok(stdout: String) -> Self {
        Self {
            stdout,
            exit_code: 0,
        }
    }

    fn error(err: &CniError, version: &str) -> Self {
        Self {
            stdout: pretty(&err.to_json(version)),
            exit_code: 1,
        }
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Runs one CNI invocation.
pub fn run(env: &dyn Fn(&str) -> Option<String>, stdin: &mut dyn Read) -> Outcome {
    let mut input = Vec::new();
    if let Err(e) = stdin.read_to_end(&mut input) {
        let err = CniError::new(CniError::IO_FAILURE, format!("reading stdin: {e}"));
        return Outcome::error(&err, CniVersion::LATEST.as_str());
    }
    // Error output carries the request's version when it is one we speak.
    let version = serde_json::from_slice::<Value>(&input)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|v| CniVersion::parse(v).is_ok())
        .unwrap_or_else(|| CniVersion::LATEST.as_str().to_string());
    if env("CNI_COMMAND").as_deref() == Some("VERSION") {
        return Outcome::ok(pretty(&version_output()));
    }
    match forward(env, &input) {
        Ok(stdout) => Outcome::ok(stdout),
        Err(e) => Outcome::error(&e, &version),
    }
}

fn forward(env: &dyn Fn(&str) -> Option<String>, input: &[u8]) -> Result<String, CniError> {
    let call = call_from_env(env, input)?;
    let parsed = parse_call(&call)?;
    let command = parsed.op.command();
    let socket = resolve_socket(parsed.netd.socket.as_deref(), env("NETD_HOST").as_deref())?;
    let timeout = match env("NETD_CNI_TIMEOUT") {
        None => DEFAULT_TIMEOUT,
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                CniError::invalid_env(format!(
                    "NETD_CNI_TIMEOUT {s:?} is not a positive number of seconds"
                ))
            })?,
    };
    let body = serde_json::to_vec(&call)
        .map_err(|e| CniError::new(CniError::INTERNAL, format!("encoding the call: {e}")))?;
    let (status, answer) = match post_json(&socket, "/cni", &body, timeout) {
        Ok(r) => r,
        Err(e) => {
            let code = match (&e, command) {
                (_, Command::Status) => CniError::NOT_AVAILABLE,
                (ClientError::Protocol(_), _) => CniError::INTERNAL,
                _ => CniError::TRY_AGAIN_LATER,
            };
            let msg = match code {
                CniError::INTERNAL => e.to_string(),
                _ => format!(
                    "netd is not available at {}: try again later",
                    socket.display()
                ),
            };
            return Err(CniError::new(code, msg).with_details(e.to_string()));
        }
    };
    if status != 200 {
        return Err(match serde_json::from_slice::<ErrorBody>(&answer) {
            Ok(b) => CniError::new(b.cni_code.unwrap_or(CniError::INTERNAL), b.message),
            Err(_) => CniError::new(CniError::INTERNAL, format!("netd answered HTTP {status}"))
                .with_details(
                    String::from_utf8_lossy(&answer)
                        .chars()
                        .take(512)
                        .collect::<String>(),
                ),
        });
    }
    if command != Command::Add {
        return Ok(String::new());
    }
    let result: Value = serde_json::from_slice(&answer).map_err(|e| {
        CniError::new(
            CniError::INTERNAL,
            format!("netd returned a result that is not JSON: {e}"),
        )
    })?;
    let result = Result100::parse_any(&result).map_err(|e| {
        CniError::new(
            CniError::INTERNAL,
            format!("netd returned an invalid result: {}", e.msg),
        )
    })?;
    Ok(pretty(&result.to_version(parsed.version)))
}
