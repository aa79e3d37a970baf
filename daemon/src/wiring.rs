//! The only place that picks real implementations and passes them down.

use std::sync::Arc;

use drivers::Driver;

/// The drivers netd serves: bridge (real netlink + nftables), host and null.
pub async fn drivers(nft_table: &str) -> anyhow::Result<Vec<Arc<dyn Driver>>> {
    let bridge = drivers::bridge::BridgeDriver::new(drivers::bridge::BridgeConfig {
        nft_table: nft_table.to_string(),
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("bridge driver: {e}"))?;
    Ok(vec![
        Arc::new(bridge),
        Arc::new(drivers::host::HostDriver),
        Arc::new(drivers::null::NullDriver),
    ])
}
