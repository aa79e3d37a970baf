//! A recording fake `DockerBackend` shared by the Docker router tests.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use plugin_api::docker::*;

#[derive(Debug, Clone)]
#[allow(dead_code)]
pub enum Call {
    CreateNetwork(CreateNetworkRequest),
    DeleteNetwork(DeleteNetworkRequest),
    CreateEndpoint(CreateEndpointRequest),
    EndpointOperInfo(EndpointRequest),
    DeleteEndpoint(EndpointRequest),
    Join(JoinRequest),
    Leave(EndpointRequest),
    Program(ProgramExternalConnectivityRequest),
    Revoke(EndpointRequest),
    RequestPool(RequestPoolRequest),
    ReleasePool(ReleasePoolRequest),
    RequestAddress(RequestAddressRequest),
    ReleaseAddress(ReleaseAddressRequest),
}

impl Call {
    #[allow(dead_code)]
    pub fn name(&self) -> &'static str {
        match self {
            Call::CreateNetwork(_) => "CreateNetwork",
            Call::DeleteNetwork(_) => "DeleteNetwork",
            Call::CreateEndpoint(_) => "CreateEndpoint",
            Call::EndpointOperInfo(_) => "EndpointOperInfo",
            Call::DeleteEndpoint(_) => "DeleteEndpoint",
            Call::Join(_) => "Join",
            Call::Leave(_) => "Leave",
            Call::Program(_) => "ProgramExternalConnectivity",
            Call::Revoke(_) => "RevokeExternalConnectivity",
            Call::RequestPool(_) => "RequestPool",
            Call::ReleasePool(_) => "ReleasePool",
            Call::RequestAddress(_) => "RequestAddress",
            Call::ReleaseAddress(_) => "ReleaseAddress",
        }
    }
}

#[derive(Default)]
pub struct Fake {
    calls: Mutex<Vec<Call>>,
    fail: Mutex<Option<String>>,
}

impl Fake {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    #[allow(dead_code)]
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    #[allow(dead_code)]
    pub fn fail_with(&self, msg: &str) {
        *self.fail.lock().unwrap() = Some(msg.to_string());
    }
    fn record(&self, c: Call) -> Result<(), PluginError> {
        self.calls.lock().unwrap().push(c);
        match self.fail.lock().unwrap().clone() {
            Some(m) => Err(PluginError::Internal(m)),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl DockerBackend for Fake {
    async fn create_network(&self, req: CreateNetworkRequest) -> Result<(), PluginError> {
        self.record(Call::CreateNetwork(req))
    }
    async fn delete_network(&self, req: DeleteNetworkRequest) -> Result<(), PluginError> {
        self.record(Call::DeleteNetwork(req))
    }
    async fn create_endpoint(
        &self,
        req: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        self.record(Call::CreateEndpoint(req))?;
        Ok(CreateEndpointResponse {
            interface: Some(EndpointInterface {
                mac_address: Some("02:42:ac:12:00:02".into()),
                ..Default::default()
            }),
        })
    }
    async fn endpoint_oper_info(
        &self,
        req: EndpointRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        let id = req.endpoint_id.clone();
        self.record(Call::EndpointOperInfo(req))?;
        let mut r = EndpointOperInfoResponse::default();
        r.value.insert("id".into(), id.into());
        Ok(r)
    }
    async fn delete_endpoint(&self, req: EndpointRequest) -> Result<(), PluginError> {
        self.record(Call::DeleteEndpoint(req))
    }
    async fn join(&self, req: JoinRequest) -> Result<JoinResponse, PluginError> {
        self.record(Call::Join(req))?;
        Ok(JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: "vethabc1234".into(),
                dst_prefix: "eth".into(),
            }),
            gateway: Some("172.18.0.1".parse().unwrap()),
            gateway_ipv6: None,
            static_routes: vec![StaticRoute {
                destination: "10.0.0.0/8".parse().unwrap(),
                route_type: RouteType::NextHop,
                next_hop: Some("172.18.0.1".parse().unwrap()),
            }],
            disable_gateway_service: false,
        })
    }
    async fn leave(&self, req: EndpointRequest) -> Result<(), PluginError> {
        self.record(Call::Leave(req))
    }
    async fn program_external_connectivity(
        &self,
        req: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        self.record(Call::Program(req))
    }
    async fn revoke_external_connectivity(&self, req: EndpointRequest) -> Result<(), PluginError> {
        self.record(Call::Revoke(req))
    }
    async fn request_pool(
        &self,
        req: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        self.record(Call::RequestPool(req))?;
        Ok(RequestPoolResponse {
            pool_id: "pool-1".into(),
            pool: "10.99.0.0/24".parse().unwrap(),
            data: Default::default(),
        })
    }
    async fn release_pool(&self, req: ReleasePoolRequest) -> Result<(), PluginError> {
        self.record(Call::ReleasePool(req))
    }
    async fn request_address(
        &self,
        req: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        self.record(Call::RequestAddress(req))?;
        Ok(RequestAddressResponse {
            address: "10.99.0.1/24".parse().unwrap(),
            data: Default::default(),
        })
    }
    async fn release_address(&self, req: ReleaseAddressRequest) -> Result<(), PluginError> {
        self.record(Call::ReleaseAddress(req))
    }
}
