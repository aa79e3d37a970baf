//! The controller's calls into the sandbox layer of `drivers` (namespaces, interfaces,
//! routes), with driver errors turned into controller errors.

use std::net::IpAddr;
use std::path::Path;

use ipnetwork::IpNetwork;

use crate::error::{Error, Result};

pub async fn create_netns(path: &str) -> Result<()> {
    drivers::sys::netns::create_netns(Path::new(path))
        .await
        .map_err(Error::from)
}

pub async fn delete_netns(path: &str) -> Result<()> {
    drivers::sys::netns::delete_netns(Path::new(path))
        .await
        .map_err(Error::from)
}

pub async fn add_interface(
    netns: &str,
    src: &str,
    dst: &str,
    mac: Option<&str>,
    addrs: &[IpNetwork],
) -> Result<()> {
    drivers::sandbox::add_interface(Path::new(netns), src, dst, mac, addrs)
        .await
        .map_err(Error::from)
}

pub async fn remove_interface(netns: &str, name: &str) -> Result<()> {
    drivers::sandbox::remove_interface(Path::new(netns), name)
        .await
        .map_err(Error::from)
}

pub async fn add_route(netns: &str, dst: IpNetwork, via: Option<IpAddr>, dev: &str) -> Result<()> {
    drivers::sandbox::add_route(Path::new(netns), dst, via, dev)
        .await
        .map_err(Error::from)
}

/// Replace the default routes (per family) with the given gateways and devices.
pub async fn set_gateway(
    netns: &str,
    gw4: Option<(IpAddr, String)>,
    gw6: Option<(IpAddr, String)>,
) -> Result<()> {
    drivers::sandbox::set_default_gateway(Path::new(netns), gw4.map(|g| g.0), gw6.map(|g| g.0))
        .await
        .map_err(Error::from)
}

pub async fn inspect(netns: &str) -> Result<serde_json::Value> {
    let s = drivers::sandbox::inspect(Path::new(netns))
        .await
        .map_err(Error::from)?;
    serde_json::to_value(s).map_err(|e| Error::internal(e.to_string()))
}
