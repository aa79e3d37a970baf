//! The axum middleware that times every request, counts it per operation and status,
//! and runs the handler inside one `api` tracing span carrying the operation and the
//! object id from the path (or the CNI container id), so the controller's own log lines
//! inside the operation carry them too.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::Metrics;

/// Largest CNI body the middleware reads to learn the command (ADD, DEL, ...).
const CNI_PEEK_LIMIT: usize = 16 << 20;

/// Operation name of a request: the controller operation for netd's own routes
/// (`create_network`, `connect`, `cni_add`, ...), the plugin method for Docker's
/// (`NetworkDriver.CreateEndpoint`), `unmatched` for paths no route knows.
pub fn operation(
    router: &str,
    method: &str,
    route: Option<&str>,
    cni_command: Option<&str>,
) -> String {
    let Some(route) = route else {
        return "unmatched".into();
    };
    if router == "docker" {
        return route.trim_start_matches('/').to_string();
    }
    let known = match (method, route) {
        ("GET", "/version") => "version",
        ("GET", "/metrics") => "metrics",
        ("GET", "/explain") => "explain",
        ("GET", "/networks") => "list_networks",
        ("POST", "/networks") => "create_network",
        ("GET", "/networks/{id}") => "inspect_network",
        ("DELETE", "/networks/{id}") => "delete_network",
        ("POST", "/networks/{id}/connect") => "connect",
        ("POST", "/networks/{id}/disconnect") => "disconnect",
        ("GET", "/sandboxes") => "list_sandboxes",
        ("POST", "/sandboxes") => "create_sandbox",
        ("GET", "/sandboxes/{id}") => "inspect_sandbox",
        ("DELETE", "/sandboxes/{id}") => "delete_sandbox",
        ("GET", "/endpoints") => "list_endpoints",
        ("GET", "/containers") => "list_containers",
        ("POST", "/containers") => "create_container",
        ("GET", "/containers/{id}") => "inspect_container",
        ("DELETE", "/containers/{id}") => "remove_container",
        ("POST", "/containers/{id}/stop") => "stop_container",
        ("GET", "/containers/{id}/logs") => "container_logs",
        ("POST", "/containers/{id}/wait") => "wait_container",
        ("POST", "/cni") => {
            return match cni_command {
                Some(c) if !c.is_empty() && c.chars().all(|c| c.is_ascii_alphabetic()) => {
                    format!("cni_{}", c.to_ascii_lowercase())
                }
                _ => "cni_invalid".into(),
            }
        }
        _ => "",
    };
    if !known.is_empty() {
        return known.into();
    }
    // A route added later: still bounded (one per route), readable.
    let mut s = method.to_ascii_lowercase();
    for seg in route
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{'))
    {
        s.push('_');
        s.push_str(seg);
    }
    s
}

/// The `{id}` segment of `path` matched by `route` (`/networks/{id}` vs `/networks/n1`).
pub fn object_id(route: &str, path: &str) -> Option<String> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(r, _)| *r == "{id}")
        .map(|(_, p)| p.to_string())
}

#[derive(serde::Deserialize)]
struct CniPeek {
    #[serde(default)]
    command: String,
    #[serde(default)]
    container_id: Option<String>,
}

pub(super) async fn track(
    State((m, router)): State<(Arc<Metrics>, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let path = req.uri().path().to_string();
    let mut id = route.as_deref().and_then(|r| object_id(r, &path));
    let mut cni_command = None;
    let req = if router == "api" && method == Method::POST && route.as_deref() == Some("/cni") {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, CNI_PEEK_LIMIT).await {
            Ok(b) => b,
            Err(e) => {
                return crate::error::Error::bad(format!("reading CNI request body: {e}"))
                    .into_response()
            }
        };
        if let Ok(p) = serde_json::from_slice::<CniPeek>(&bytes) {
            cni_command = Some(p.command);
            id = p.container_id;
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let op = operation(
        router,
        method.as_str(),
        route.as_deref(),
        cni_command.as_deref(),
    );
    let span = tracing::info_span!(
        "api",
        router = %router,
        op = %op,
        method = %method,
        path = %path,
        id = tracing::field::Empty,
    );
    if let Some(id) = &id {
        span.record("id", tracing::field::display(id));
    }
    let resp = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if method == Method::GET {
            tracing::debug!(status, elapsed_ms, "request done");
        } else if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request done");
        }
    });
    m.record(
        router,
        &op,
        method.as_str(),
        route.as_deref().unwrap_or("unmatched"),
        status,
        elapsed,
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations() {
        assert_eq!(
            operation("api", "POST", Some("/networks"), None),
            "create_network"
        );
        assert_eq!(
            operation("api", "DELETE", Some("/networks/{id}"), None),
            "delete_network"
        );
        assert_eq!(
            operation("api", "POST", Some("/networks/{id}/connect"), None),
            "connect"
        );
        assert_eq!(
            operation("api", "DELETE", Some("/sandboxes/{id}"), None),
            "delete_sandbox"
        );
        assert_eq!(
            operation("api", "POST", Some("/cni"), Some("ADD")),
            "cni_add"
        );
        assert_eq!(
            operation("api", "POST", Some("/cni"), Some("DEL")),
            "cni_del"
        );
        assert_eq!(
            operation("api", "POST", Some("/cni"), Some("x y")),
            "cni_invalid"
        );
        assert_eq!(operation("api", "POST", Some("/cni"), None), "cni_invalid");
        assert_eq!(
            operation(
                "docker",
                "POST",
                Some("/NetworkDriver.CreateEndpoint"),
                None
            ),
            "NetworkDriver.CreateEndpoint"
        );
        assert_eq!(operation("api", "GET", None, None), "unmatched");
        assert_eq!(
            operation("api", "PUT", Some("/things/{id}/poke"), None),
            "put_things_poke"
        );
    }

    #[test]
    fn ids_from_paths() {
        assert_eq!(
            object_id("/networks/{id}", "/networks/n1").as_deref(),
            Some("n1")
        );
        assert_eq!(
            object_id("/networks/{id}/connect", "/networks/abc/connect").as_deref(),
            Some("abc")
        );
        assert_eq!(object_id("/networks", "/networks"), None);
    }
}
