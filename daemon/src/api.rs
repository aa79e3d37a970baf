//! netd's REST API (axum) on its unix socket. Bodies are parsed by hand from bytes so
//! that garbage, a wrong content type or unknown fields all get the same precise 400
//! JSON error instead of axum's plain-text rejections.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use plugin_api::rest;
use serde::de::DeserializeOwned;

use crate::controller::{ConnectOpts, Controller};
use crate::error::Error;

pub type Ctl = Arc<Controller>;

pub const API_VERSION: &str = "1";

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(rest::ErrorBody {
                message: self.message,
                cni_code: None,
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, Error>;

/// Parse a JSON body, with the type's name in the error.
pub fn body<T: DeserializeOwned>(what: &str, b: &Bytes) -> Result<T, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::bad(format!("invalid {what} request body: {e}"));
    let v: serde_json::Value = serde_json::from_slice(b).map_err(|e| bad(&e))?;
    // serde would read a struct from an array, field by field: bodies are objects.
    if !v.is_object() {
        return Err(bad(&"expected a JSON object"));
    }
    serde_json::from_value(v).map_err(|e| bad(&e))
}

/// Every error answer is JSON with a `message`, also the ones axum makes itself
/// (405, undecodable paths, bad query strings).
pub async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    (
        status,
        Json(rest::ErrorBody {
            message,
            cni_code: None,
        }),
    )
        .into_response()
}

pub fn router(ctl: Ctl) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/networks", get(list_networks).post(create_network))
        .route(
            "/networks/{id}",
            get(inspect_network).delete(delete_network),
        )
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
        .route("/sandboxes", get(list_sandboxes).post(create_sandbox))
        .route(
            "/sandboxes/{id}",
            get(inspect_sandbox).delete(delete_sandbox),
        )
        .route("/sandboxes/{id}/rename", post(rename_sandbox))
        .route("/endpoints", get(list_endpoints))
        .route("/cni", post(cni))
        .route("/system/reconcile", post(reconcile))
        .route("/ipam", get(ipam_state))
        .fallback(|| async { Error::not_found("no such API route") })
        .with_state(ctl)
        .layer(axum::middleware::map_response(json_errors))
}

async fn version() -> Json<rest::VersionInfo> {
    Json(rest::VersionInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        api_version: API_VERSION.to_string(),
    })
}

async fn list_networks(State(c): State<Ctl>) -> Json<Vec<rest::Network>> {
    Json(c.list_networks().await)
}

async fn create_network(State(c): State<Ctl>, b: Bytes) -> ApiResult<rest::Network> {
    let req: rest::NetworkCreate = body("network create", &b)?;
    Ok(Json(c.create_network(req).await?))
}

async fn inspect_network(State(c): State<Ctl>, Path(id): Path<String>) -> ApiResult<rest::Network> {
    Ok(Json(c.inspect_network(&id).await?))
}

async fn delete_network(State(c): State<Ctl>, Path(id): Path<String>) -> Result<StatusCode, Error> {
    c.delete_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn connect(
    State(c): State<Ctl>,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<rest::Endpoint> {
    let req: rest::NetworkConnect = body("network connect", &b)?;
    let opts = ConnectOpts::from_rest(&req)?;
    Ok(Json(c.connect(&id, &req.target, opts).await?))
}

async fn disconnect(
    State(c): State<Ctl>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<StatusCode, Error> {
    let req: rest::NetworkDisconnect = body("network disconnect", &b)?;
    c.disconnect(&id, &req.sandbox).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_sandboxes(State(c): State<Ctl>) -> Json<Vec<rest::Sandbox>> {
    Json(c.list_sandboxes().await)
}

async fn create_sandbox(State(c): State<Ctl>, b: Bytes) -> ApiResult<rest::Sandbox> {
    let req: rest::SandboxCreate = body("sandbox create", &b)?;
    Ok(Json(c.create_sandbox(req).await?))
}

#[derive(serde::Deserialize)]
struct InspectQuery {
    #[serde(default)]
    kernel: Option<bool>,
}

async fn inspect_sandbox(
    State(c): State<Ctl>,
    Path(id): Path<String>,
    Query(q): Query<InspectQuery>,
) -> ApiResult<rest::Sandbox> {
    Ok(Json(
        c.inspect_sandbox(&id, q.kernel.unwrap_or(true)).await?,
    ))
}

async fn delete_sandbox(State(c): State<Ctl>, Path(id): Path<String>) -> Result<StatusCode, Error> {
    c.delete_sandbox(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `netd-cni` forwards its environment and stdin here. Errors carry a CNI code.
async fn cni(State(c): State<Ctl>, b: Bytes) -> Response {
    let call: rest::CniCall = match body("CNI", &b) {
        Ok(c) => c,
        Err(e) => return cni_error(e, Some(6)),
    };
    match crate::cni::handle(&c, call).await {
        Ok(v) => Json(v).into_response(),
        Err(f) => cni_error(f.error, Some(f.code)),
    }
}

/// An error for netd-cni: the message plus the CNI code (from the error kind unless given).
pub fn cni_error(e: Error, code: Option<u32>) -> Response {
    use crate::error::Kind;
    let code = code.unwrap_or(match e.kind {
        Kind::BadRequest => 7,
        Kind::Conflict => 11,
        Kind::NotFound => 7,
        Kind::Unavailable => 11,
        Kind::Internal => 999,
    });
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(rest::ErrorBody {
            message: e.message,
            cni_code: Some(code),
        }),
    )
        .into_response()
}

/// IPAM pools with usage and the allocated addresses (ranges), for inspection and tests.
async fn ipam_state(State(c): State<Ctl>) -> Json<serde_json::Value> {
    let st = c.snapshot().await;
    let pools: Vec<serde_json::Value> = st
        .ipam
        .pools()
        .map(|p| {
            let ranges: Vec<String> = st
                .ipam
                .allocated_ranges(&p.id)
                .map(|it| {
                    it.map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}-{b}")
                        }
                    })
                    .collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "id": p.id.to_string(),
                "subnet": p.subnet.to_string(),
                "gateway": p.gateway,
                "allocated": p.allocated.to_string(),
                "capacity": p.capacity.to_string(),
                "allocated_ranges": ranges,
            })
        })
        .collect();
    Json(serde_json::json!({ "pools": pools }))
}

async fn reconcile(State(c): State<Ctl>) -> ApiResult<crate::controller::ReconcileReport> {
    Ok(Json(c.reconcile().await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename_sandbox(
    State(c): State<Ctl>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<StatusCode, Error> {
    let r: Rename = body("rename", &b)?;
    c.rename_sandbox(&id, &r.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_endpoints(State(c): State<Ctl>) -> Json<Vec<rest::Endpoint>> {
    let st = c.snapshot().await;
    Json(
        st.endpoints
            .values()
            .map(|e| crate::controller::endpoint_rest(&st, e))
            .collect(),
    )
}

// ---- containers of the bundled runtime ----

type Cts = Arc<crate::containers::Containers>;

pub fn container_router(c: Cts) -> Router {
    Router::new()
        .route("/containers", get(list_containers).post(create_container))
        .route(
            "/containers/{id}",
            get(inspect_container).delete(remove_container),
        )
        .route("/containers/{id}/stop", post(stop_container))
        .route("/containers/{id}/rename", post(rename_container))
        .route("/containers/{id}/logs", get(container_logs))
        .route("/containers/{id}/wait", post(wait_container))
        .with_state(c)
        .layer(axum::middleware::map_response(json_errors))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: Option<bool>,
}

async fn list_containers(
    State(c): State<Cts>,
    Query(q): Query<ListQuery>,
) -> Json<Vec<rest::Container>> {
    Json(c.list(q.all.unwrap_or(false)).await)
}

async fn create_container(State(c): State<Cts>, b: Bytes) -> ApiResult<rest::Container> {
    let req: rest::ContainerCreate = body("container create", &b)?;
    Ok(Json(c.create(req).await?))
}

async fn inspect_container(
    State(c): State<Cts>,
    Path(id): Path<String>,
) -> ApiResult<rest::Container> {
    Ok(Json(c.inspect(&id).await?))
}

#[derive(serde::Deserialize)]
struct RmQuery {
    #[serde(default)]
    force: Option<bool>,
}

async fn remove_container(
    State(c): State<Cts>,
    Path(id): Path<String>,
    Query(q): Query<RmQuery>,
) -> Result<StatusCode, Error> {
    c.remove(&id, q.force.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct StopQuery {
    #[serde(default)]
    timeout: Option<u64>,
}

async fn stop_container(
    State(c): State<Cts>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<StatusCode, Error> {
    c.stop(&id, std::time::Duration::from_secs(q.timeout.unwrap_or(10)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rename_container(
    State(c): State<Cts>,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<StatusCode, Error> {
    let r: Rename = body("rename", &b)?;
    c.rename(&id, &r.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn container_logs(State(c): State<Cts>, Path(id): Path<String>) -> Result<Vec<u8>, Error> {
    c.logs(&id).await
}

async fn wait_container(
    State(c): State<Cts>,
    Path(id): Path<String>,
) -> ApiResult<serde_json::Value> {
    let r = c.find(&id).await?;
    let code = c.wait(&r.id).await?;
    Ok(Json(serde_json::json!({ "exit_code": code })))
}
