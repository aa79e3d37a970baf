//! The controller's calls into the sandbox layer of `drivers` (namespaces, interfaces,
//! routes), with kernel errors turned into controller errors. The `Sys` implementation
//! is passed in by the wiring, so the controller never picks it.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use drivers::sys::{Sys, SysError};
use ipnetwork::IpNetwork;

use crate::error::{Error, Result};

fn k(e: SysError) -> Error {
    Error::from(drivers::DriverError::from(e))
}

#[derive(Clone)]
pub struct Kernel {
    pub sys: Arc<dyn Sys>,
}

impl Kernel {
    pub async fn create_netns(&self, path: &str) -> Result<()> {
        drivers::sys::netns::create_netns(Path::new(path))
            .await
            .map_err(k)
    }

    pub async fn delete_netns(&self, path: &str) -> Result<()> {
        drivers::sys::netns::delete_netns(Path::new(path)).map_err(k)
    }

    pub async fn add_interface(
        &self,
        netns: &str,
        src: &str,
        dst: &str,
        mac: Option<&str>,
        addrs: &[IpNetwork],
    ) -> Result<()> {
        drivers::sandbox::add_interface(&*self.sys, Path::new(netns), src, dst, mac, addrs)
            .await
            .map_err(k)
    }

    pub async fn remove_interface(&self, netns: &str, name: &str) -> Result<()> {
        drivers::sandbox::remove_interface(&*self.sys, Path::new(netns), name)
            .await
            .map_err(k)
    }

    pub async fn add_route(
        &self,
        netns: &str,
        dst: IpNetwork,
        via: Option<IpAddr>,
        dev: &str,
    ) -> Result<()> {
        drivers::sandbox::add_route(&*self.sys, Path::new(netns), dst, via, Some(dev))
            .await
            .map_err(k)
    }

    /// Make the default routes (per family) go through the given gateways; a family
    /// without a gateway loses its default route. One batch in the sandbox.
    pub async fn set_gateway(
        &self,
        netns: &str,
        gw4: Option<IpAddr>,
        gw6: Option<IpAddr>,
    ) -> Result<()> {
        drivers::sandbox::set_default_routes(&*self.sys, Path::new(netns), gw4, gw6)
            .await
            .map_err(k)
    }

    /// Run a driver's `create_endpoint` so that the container end of its veth is born
    /// inside the sandbox as `ifname` (see `drivers::sys::placement`): the join then
    /// has nothing to move between namespaces, the costliest step of an attachment.
    pub async fn with_peer_in_sandbox<F: std::future::Future>(
        &self,
        netns: &str,
        ifname: &str,
        mac: Option<&str>,
        create: F,
    ) -> F::Output {
        let p = drivers::sys::placement::PeerPlacement {
            netns: netns.into(),
            name: ifname.to_string(),
            mac: mac.map(str::to_string),
        };
        drivers::sys::placement::with_peer_placement(p, create).await
    }

    pub async fn inspect(&self, netns: &str) -> Result<serde_json::Value> {
        let s = drivers::sandbox::inspect(&*self.sys, Path::new(netns))
            .await
            .map_err(k)?;
        serde_json::to_value(s).map_err(|e| Error::internal(e.to_string()))
    }
}
