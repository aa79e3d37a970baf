//! The only place that picks real implementations and passes them down.

use std::sync::Arc;

use drivers::sys::real::RealSys;
use drivers::sys::Sys;
use drivers::Driver;

use crate::kernel::Kernel;

pub struct Wired {
    pub drivers: Vec<Arc<dyn Driver>>,
    pub kernel: Kernel,
    pub bridge: Arc<drivers::bridge::BridgeDriver>,
}

/// The drivers netd serves: bridge (real netlink + nftables), host and null.
pub async fn wire(nft_table: &str, userland_proxy: bool) -> anyhow::Result<Wired> {
    let sys: Arc<dyn Sys> = Arc::new(RealSys::new());
    let bridge = Arc::new(drivers::bridge::BridgeDriver::new(
        sys.clone(),
        drivers::bridge::BridgeConfig {
            table: nft_table.to_string(),
            userland_proxy,
            ..Default::default()
        },
    ));
    bridge
        .init()
        .await
        .map_err(|e| anyhow::anyhow!("setting up nftables table inet {nft_table}: {e}"))?;
    Ok(Wired {
        drivers: vec![
            bridge.clone(),
            Arc::new(drivers::host::HostDriver),
            Arc::new(drivers::null::NullDriver),
        ],
        kernel: Kernel { sys },
        bridge,
    })
}
