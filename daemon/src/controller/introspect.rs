//! Read-only views of controller internals for the operator tools (metrics, explain),
//! so those modules need no access to the controller's private fields.

use super::Controller;

impl Controller {
    /// Counters of the userland proxy (None with `--userland-proxy=false`).
    pub fn proxy_stats(&self) -> Option<proxy::StatsSnapshot> {
        self.proxy.as_ref().map(|p| p.stats())
    }
}
