//! Docker's remote network driver and IPAM plugin, backed by the controller.
//! (Scaffold: the methods are filled in by the Docker plugin work.)

use std::sync::Arc;

use async_trait::async_trait;
use plugin_api::docker::*;

use crate::controller::Controller;

pub struct DockerPlugin {
    pub ctl: Arc<Controller>,
}

impl DockerPlugin {
    pub fn new(ctl: Arc<Controller>) -> Self {
        DockerPlugin { ctl }
    }
}

fn todo<T>(m: &str) -> Result<T, PluginError> {
    Err(PluginError::NotSupported(format!("{m} is not wired yet")))
}

#[async_trait]
impl DockerBackend for DockerPlugin {
    async fn create_network(&self, _r: CreateNetworkRequest) -> Result<(), PluginError> { todo("CreateNetwork") }
    async fn delete_network(&self, _r: DeleteNetworkRequest) -> Result<(), PluginError> { todo("DeleteNetwork") }
    async fn create_endpoint(&self, _r: CreateEndpointRequest) -> Result<CreateEndpointResponse, PluginError> { todo("CreateEndpoint") }
    async fn endpoint_oper_info(&self, _r: EndpointOperInfoRequest) -> Result<EndpointOperInfoResponse, PluginError> { todo("EndpointOperInfo") }
    async fn delete_endpoint(&self, _r: DeleteEndpointRequest) -> Result<(), PluginError> { todo("DeleteEndpoint") }
    async fn join(&self, _r: JoinRequest) -> Result<JoinResponse, PluginError> { todo("Join") }
    async fn leave(&self, _r: LeaveRequest) -> Result<(), PluginError> { todo("Leave") }
    async fn program_external_connectivity(&self, _r: ProgramExternalConnectivityRequest) -> Result<(), PluginError> { todo("ProgramExternalConnectivity") }
    async fn revoke_external_connectivity(&self, _r: RevokeExternalConnectivityRequest) -> Result<(), PluginError> { todo("RevokeExternalConnectivity") }
    async fn request_pool(&self, _r: RequestPoolRequest) -> Result<RequestPoolResponse, PluginError> { todo("RequestPool") }
    async fn release_pool(&self, _r: ReleasePoolRequest) -> Result<(), PluginError> { todo("ReleasePool") }
    async fn request_address(&self, _r: RequestAddressRequest) -> Result<RequestAddressResponse, PluginError> { todo("RequestAddress") }
    async fn release_address(&self, _r: ReleaseAddressRequest) -> Result<(), PluginError> { todo("ReleaseAddress") }
}
