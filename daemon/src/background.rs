//! Background duties of the daemon: keep netd's traffic allowed beside a dockerd that
//! starts (or reloads its rules) after netd.

use std::sync::Arc;
use std::time::Duration;

use drivers::bridge::BridgeDriver;

/// Make sure netd's bridges have their accept rules in Docker's DOCKER-USER chain (a
/// no-op when no dockerd runs). Logs what changed.
pub async fn docker_sync_once(bridge: &BridgeDriver) {
    let bridges = match bridge.firewall_bridges().await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(error = %e, "listing netd bridges");
            return;
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

/// Watch nftables change notifications (netlink, NFNLGRP_NFTABLES) and, on any change
/// in the host's ruleset: restore netd's table from the store when someone deleted it
/// or flushed the whole ruleset, and re-sync netd's DOCKER-USER rules (a dockerd that
/// starts or reloads rewrites that chain; iptables-nft changes notify too). A slow
/// poll backs the notifications up (a full receive buffer drops them), so no `nft`
/// process runs every second on an idle host.
pub fn spawn_firewall_watch(
    ctl: Arc<crate::controller::Controller>,
    bridge: Arc<BridgeDriver>,
    poll: Duration,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    std::thread::Builder::new()
        .name("netd-nft-watch".into())
        .spawn(move || {
            use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
            const NFNLGRP_NFTABLES: u32 = 7;
            let sock = (|| {
                let mut s = Socket::new(NETLINK_NETFILTER)?;
                s.bind(&SocketAddr::new(0, 0))?;
                s.add_membership(NFNLGRP_NFTABLES)?;
                Ok::<_, std::io::Error>(s)
            })();
            let sock = match sock {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "nftables notifications unavailable; polling only");
                    return;
                }
            };
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let mut chunk = &mut buf[..];
                match sock.recv(&mut chunk, 0) {
                    Ok(_) => {
                        let _ = tx.try_send(());
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        let _ = tx.try_send(());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "nftables notifications stopped");
                        return;
                    }
                }
                if tx.is_closed() {
                    return;
                }
            }
        })
        .expect("spawn thread");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = rx.recv() => {}
                _ = tick.tick() => {}
            }
            // Let a burst of changes (a whole ruleset reload) settle.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
            if let Err(e) = ctl.reconcile_firewall().await {
                tracing::error!(error = %e, "restoring netd's firewall table");
            }
            docker_sync_once(&bridge).await;
            // Our own sync changes the ruleset too: drop the echo it caused.
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
        }
    })
}

/// Give freed heap memory back to the kernel every `period` (glibc keeps it in its
/// arenas after a load burst otherwise, so RSS would stay at the peak).
pub fn spawn_memory_trim(period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim only releases free memory; it is thread-safe.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    })
}
