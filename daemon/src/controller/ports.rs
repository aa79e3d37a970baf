//! Port publishing: host port allocation and the userland proxies of an endpoint.

use drivers::PortBinding;
use plugin_api::rest;

use super::Controller;
use crate::error::{Error, Result};
use crate::model::{EndpointRec, NetworkRec};

impl Controller {
    pub(crate) async fn allocate_ports(
        &self,
        _net: &NetworkRec,
        _ep: &EndpointRec,
        _ports: &[rest::PortMapping],
    ) -> Result<Vec<PortBinding>> {
        Err(Error::bad("port publishing is not implemented yet"))
    }

    pub(crate) async fn start_port_proxies(&self, _ep: &EndpointRec) -> Result<()> {
        Ok(())
    }

    pub(crate) async fn stop_port_proxies(&self, _ep: &EndpointRec) {}

    pub(crate) async fn release_ports(&self, _ep: &EndpointRec) {}
}
