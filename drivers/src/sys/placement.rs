//! Where the container end of the next veth should be born.
//!
//! Moving a link between namespaces is the most expensive thing in an
//! attachment: the kernel's `__dev_change_net_namespace` waits for two RCU
//! grace periods and an `rcu_barrier` (10-40 ms measured here, and more under
//! load), whereas a veth created with its peer already in the sandbox
//! (`IFLA_NET_NS_FD` on the peer) costs no wait at all.
//!
//! The CNM order (create the endpoint, then join a sandbox) hides the sandbox
//! from the driver when it creates the veth, so a caller that already knows
//! the sandbox (netd's controller creating and joining in one operation)
//! wraps the driver's `create_endpoint` in [`with_peer_placement`]: the first
//! veth created in that scope gets its peer directly in the sandbox under the
//! final name (`eth0`), with its MAC and MTU. Without a scope (Docker's
//! CreateEndpoint/Join, replays) nothing changes and the join moves the link.
//! [`crate::sandbox::add_interface`] handles both cases.

use std::cell::RefCell;
use std::future::Future;
use std::path::PathBuf;

/// The sandbox side of a veth to be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlacement {
    /// Namespace file of the sandbox.
    pub netns: PathBuf,
    /// Name of the peer inside the sandbox (e.g. `eth0`).
    pub name: String,
    /// Its MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
}

tokio::task_local! {
    static PEER: RefCell<Option<PeerPlacement>>;
}

/// Run `f` with `p` as the placement of the first veth peer created in it.
pub async fn with_peer_placement<F: Future>(p: PeerPlacement, f: F) -> F::Output {
    PEER.scope(RefCell::new(Some(p)), f).await
}

/// Take the placement of the current scope, if any (used once).
pub fn take() -> Option<PeerPlacement> {
    PEER.try_with(|c| c.borrow_mut().take()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn used_once_and_scoped() {
        assert!(take().is_none());
        let p = PeerPlacement {
            netns: "/run/netd/netns/x".into(),
            name: "eth0".into(),
            mac: None,
        };
        let got = with_peer_placement(p.clone(), async {
            let a = take();
            let b = take();
            (a, b)
        })
        .await;
        assert_eq!(got, (Some(p), None));
        assert!(take().is_none());
    }
}
