//! Background duties of the daemon: keep netd's traffic allowed beside a dockerd that
//! starts (or reloads its rules) after netd.

use std::sync::Arc;
use std::time::Duration;

use drivers::bridge::BridgeDriver;

/// Every `period`, make sure netd's bridges have their accept rules in Docker's
/// DOCKER-USER chain (a no-op when no dockerd runs). Logs what changed.
pub fn spawn_docker_sync(
    bridge: Arc<BridgeDriver>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let bridges = match bridge.firewall_bridges().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!(error = %e, "listing netd bridges");
                    continue;
                }
            };
            match bridge.docker_coexistence_sync(&bridges).await {
                Ok(rep) if !rep.inserted.is_empty() || rep.deleted_rules > 0 => {
                    tracing::info!(
                        families = ?rep.families,
                        inserted = ?rep.inserted,
                        deleted = rep.deleted_rules,
                        "DOCKER-USER: accept rules for netd's bridges updated (dockerd's FORWARD policy is drop)"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "DOCKER-USER sync failed"),
            }
        }
    })
}
