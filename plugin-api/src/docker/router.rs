//! axum router for the Docker plugin protocol. Docker posts JSON without a Content-Type
//! header and sends empty bodies for the no-payload methods, so every handler takes the raw
//! body (`Bytes`), reads empty as `{}`, and decodes it with serde_json itself; answers carry
//! `application/vnd.docker.plugins.v1.2+json`.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::types::{
    ActivateResponse, CapabilitiesResponse, DiscoveryNotification, Empty, Validate,
};
use super::{DockerBackend, PluginError};

/// Content-Type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

type Backend = Arc<dyn DockerBackend>;

/// Which error convention a method follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subsystem {
    /// 200 + `{"Err"}` on failure.
    Network,
    /// 500 + `{"Err","Error"}` on failure.
    Ipam,
}

fn reply(status: StatusCode, body: &impl Serialize) -> Response {
    // Serialising our own response types cannot fail (string keys, no non-finite floats);
    // fall back to a fixed JSON error rather than panicking if it ever does.
    let bytes = serde_json::to_vec(body)
        .unwrap_or_else(|_| br#"{"Err":"internal error: response encoding"}"#.to_vec());
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response()
}

fn error_reply(sub: Subsystem, status: StatusCode, msg: &str) -> Response {
    match sub {
        Subsystem::Network => reply(status, &json!({ "Err": msg })),
        Subsystem::Ipam => reply(status, &json!({ "Err": msg, "Error": msg })),
    }
}

fn bad_request(sub: Subsystem, method: &str, reason: impl std::fmt::Display) -> Response {
    let msg = format!("invalid request body for {method}: {reason}");
    tracing::warn!(method, error = %msg, "rejected docker plugin request");
    error_reply(sub, StatusCode::BAD_REQUEST, &msg)
}

fn failure(sub: Subsystem, method: &str, err: &PluginError) -> Response {
    tracing::warn!(method, error = %err, "docker plugin call failed");
    let status = match sub {
        Subsystem::Network => StatusCode::OK,
        Subsystem::Ipam => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_reply(sub, status, err.message())
}

/// Decodes a request body: empty (or whitespace) means `{}`.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_slice(b"{}")
    } else {
        serde_json::from_slice(body)
    }
}

/// Decode, validate, call, encode.
async fn dispatch<Req, Resp, F, Fut>(
    sub: Subsystem,
    method: &'static str,
    body: Bytes,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Validate,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, PluginError>>,
{
    let req: Req = match decode(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(sub, method, e),
    };
    if let Err(e) = req.validate() {
        return bad_request(sub, method, e);
    }
    tracing::debug!(method, "docker plugin call");
    match call(req).await {
        Ok(resp) => reply(StatusCode::OK, &resp),
        Err(e) => failure(sub, method, &e),
    }
}

/// Registers `POST /<method>` forwarding to a backend method.
/// `unit` methods answer `{}` on success.
macro_rules! forward {
    ($router:expr, $sub:expr, $method:literal, $call:ident) => {
        $router.route(
            concat!("/", $method),
            post(|State(b): State<Backend>, body: Bytes| async move {
                dispatch($sub, $method, body, |req| async move { b.$call(req).await }).await
            }),
        )
    };
    ($router:expr, $sub:expr, $method:literal, $call:ident, unit) => {
        $router.route(
            concat!("/", $method),
            post(|State(b): State<Backend>, body: Bytes| async move {
                dispatch($sub, $method, body, |req| async move {
                    b.$call(req).await.map(|()| Empty {})
                })
                .await
            }),
        )
    };
}

/// The plugin router: `POST /Plugin.Activate` and every NetworkDriver / IpamDriver method.
/// Serve it on `/run/docker/plugins/<name>.sock`.
pub fn router(backend: Arc<dyn DockerBackend>) -> Router {
    use Subsystem::{Ipam, Network};
    let r: Router<Backend> = Router::new()
        .route("/Plugin.Activate", post(activate))
        .route("/NetworkDriver.GetCapabilities", post(net_capabilities))
        .route("/NetworkDriver.DiscoverNew", post(discover_new))
        .route("/NetworkDriver.DiscoverDelete", post(discover_delete))
        .route("/NetworkDriver.AllocateNetwork", post(allocate_network))
        .route("/NetworkDriver.FreeNetwork", post(free_network))
        .route("/IpamDriver.GetCapabilities", post(ipam_capabilities))
        .route(
            "/IpamDriver.GetDefaultAddressSpaces",
            post(default_address_spaces),
        );
    let r = forward!(
        r,
        Network,
        "NetworkDriver.CreateNetwork",
        create_network,
        unit
    );
    let r = forward!(
        r,
        Network,
        "NetworkDriver.DeleteNetwork",
        delete_network,
        unit
    );
    let r = forward!(r, Network, "NetworkDriver.CreateEndpoint", create_endpoint);
    let r = forward!(
        r,
        Network,
        "NetworkDriver.EndpointOperInfo",
        endpoint_oper_info
    );
    let r = forward!(
        r,
        Network,
        "NetworkDriver.DeleteEndpoint",
        delete_endpoint,
        unit
    );
    let r = forward!(r, Network, "NetworkDriver.Join", join);
    let r = forward!(r, Network, "NetworkDriver.Leave", leave, unit);
    let r = forward!(
        r,
        Network,
        "NetworkDriver.ProgramExternalConnectivity",
        program_external_connectivity,
        unit
    );
    let r = forward!(
        r,
        Network,
        "NetworkDriver.RevokeExternalConnectivity",
        revoke_external_connectivity,
        unit
    );
    let r = forward!(r, Ipam, "IpamDriver.RequestPool", request_pool);
    let r = forward!(r, Ipam, "IpamDriver.ReleasePool", release_pool, unit);
    let r = forward!(r, Ipam, "IpamDriver.RequestAddress", request_address);
    let r = forward!(r, Ipam, "IpamDriver.ReleaseAddress", release_address, unit);
    r.fallback(unknown_method)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(backend)
}

async fn activate() -> Response {
    reply(
        StatusCode::OK,
        &ActivateResponse {
            implements: vec!["NetworkDriver".into(), "IpamDriver".into()],
        },
    )
}

async fn net_capabilities() -> Response {
    reply(
        StatusCode::OK,
        &CapabilitiesResponse {
            scope: "local".into(),
            connectivity_scope: "local".into(),
        },
    )
}

async fn discover_new(body: Bytes) -> Response {
    discovery("NetworkDriver.DiscoverNew", body).await
}

async fn discover_delete(body: Bytes) -> Response {
    discovery("NetworkDriver.DiscoverDelete", body).await
}

async fn discovery(method: &'static str, body: Bytes) -> Response {
    dispatch(
        Subsystem::Network,
        method,
        body,
        |_: DiscoveryNotification| async { Ok(Empty {}) },
    )
    .await
}

async fn allocate_network() -> Response {
    let err = PluginError::NotSupported(
        "AllocateNetwork is not supported: netd is a local-scope driver (no swarm)".into(),
    );
    failure(Subsystem::Network, "NetworkDriver.AllocateNetwork", &err)
}

async fn free_network() -> Response {
    let err = PluginError::NotSupported(
        "FreeNetwork is not supported: netd is a local-scope driver (no swarm)".into(),
    );
    failure(Subsystem::Network, "NetworkDriver.FreeNetwork", &err)
}

// The no-payload IPAM methods ignore whatever body they get.
async fn ipam_capabilities(State(b): State<Backend>) -> Response {
    match b.ipam_capabilities().await {
        Ok(c) => reply(StatusCode::OK, &c),
        Err(e) => failure(Subsystem::Ipam, "IpamDriver.GetCapabilities", &e),
    }
}

async fn default_address_spaces(State(b): State<Backend>) -> Response {
    match b.default_address_spaces().await {
        Ok(s) => reply(StatusCode::OK, &s),
        Err(e) => failure(Subsystem::Ipam, "IpamDriver.GetDefaultAddressSpaces", &e),
    }
}

async fn unknown_method(uri: Uri) -> Response {
    tracing::debug!(path = %uri.path(), "unknown docker plugin method");
    let msg = format!("unknown method {}", uri.path());
    error_reply(Subsystem::Network, StatusCode::NOT_FOUND, &msg)
}

async fn method_not_allowed(uri: Uri) -> Response {
    let msg = format!("{} only accepts POST", uri.path());
    error_reply(Subsystem::Network, StatusCode::METHOD_NOT_ALLOWED, &msg)
}
