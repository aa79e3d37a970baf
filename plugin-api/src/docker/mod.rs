//! Docker's remote network plugin protocol (NetworkDriver + IpamDriver, API v1.x) so that
//! `docker network create -d netd --ipam-driver netd` drives netd.
//!
//! - [`types`]: request/response bodies, parsed into typed values at the edge.
//! - [`options`]: decoders for the `Options` bag (generic `-o` map, port maps, flags).
//! - [`router`]: the axum router; it answers the protocol-only methods itself
//!   (`Plugin.Activate`, capabilities, discovery, swarm-only allocation) and forwards the
//!   rest to a [`DockerBackend`] the daemon implements. This crate never sees the controller.
//!
//! Error mapping (see the protocol notes): NetworkDriver failures are HTTP 200 with
//! `{"Err": msg}`; IPAM failures are HTTP 500 with `{"Err": msg, "Error": msg}` (the engine
//! checks `Error` on IPAM 200 answers, `Err` on non-200); a malformed body is HTTP 400 with
//! `{"Err": "invalid request body for <Method>: ..."}` (plus `Error` for IPAM) and the backend
//! is not called; an unknown method is HTTP 404 with a JSON `Err`.

mod de;
pub mod options;
pub mod router;
pub mod types;

use async_trait::async_trait;

pub use options::{DriverOptions, ExposedPort, OptionError, PortBinding, Protocol};
pub use router::{router, CONTENT_TYPE};
pub use types::*;

/// A failed backend operation. Docker only sees the message; the kind is for logs and for
/// callers that want to tell the cases apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The request is well-formed JSON but not acceptable (bad option, conflict of values).
    #[error("{0}")]
    InvalidArgument(String),
    /// A network, endpoint or pool that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object exists already or is in use.
    #[error("{0}")]
    Conflict(String),
    /// The operation is not supported by netd.
    #[error("{0}")]
    NotSupported(String),
    /// Anything else (kernel or store failure).
    #[error("{0}")]
    Internal(String),
}

impl PluginError {
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidArgument(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::NotSupported(m)
            | Self::Internal(m) => m,
        }
    }
}

/// What the daemon implements to serve Docker. Requests arrive validated (required ids
/// non-empty, addresses parsed, pool families consistent). Methods the router answers itself
/// are not here: `Plugin.Activate`, `NetworkDriver.GetCapabilities` (local scope),
/// `DiscoverNew`/`DiscoverDelete` (ignored), `AllocateNetwork`/`FreeNetwork` (refused: swarm
/// only).
#[async_trait]
pub trait DockerBackend: Send + Sync + 'static {
    // ---- NetworkDriver ----
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError>;
    async fn delete_network(&self, req: DeleteNetworkRequest) -> Result<(), PluginError>;
    /// May fill only the interface fields Docker left empty (normally the MAC).
    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError>;
    async fn endpoint_oper_info(
        &self,
        req: EndpointOperInfoRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError>;
    /// Must tolerate unknown endpoints (Docker calls it during rollback).
    async fn delete_endpoint(&self, req: DeleteEndpointRequest) -> Result<(), PluginError>;
    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError>;
    async fn leave(&self, req: LeaveRequest) -> Result<(), PluginError>;
    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError>;
    async fn revoke_external_connectivity(
        &self,
        req: RevokeExternalConnectivityRequest,
    ) -> Result<(), PluginError>;

    // ---- IpamDriver ----
    /// Default: no MAC needed, no request replay after an engine restart.
    async fn ipam_capabilities(&self) -> Result<IpamCapabilities, PluginError> {
        Ok(IpamCapabilities::default())
    }
    /// Default: `LocalDefault` / `GlobalDefault`.
    async fn default_address_spaces(&self) -> Result<AddressSpacesResponse, PluginError> {
        Ok(AddressSpacesResponse::default())
    }
    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError>;
    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError>;
    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError>;
    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError>;
}
