//! The CNM controller: owns the in-memory state, the store and the drivers, and runs
//! every API operation as "validate, persist, act, commit", rolling back on failure.
//!
//! Concurrency model: one async mutex over the whole [`State`]. Operations are a few
//! netlink calls long (milliseconds), so serialising them costs little and makes every
//! operation atomic with respect to the others. Each operation starts from a snapshot
//! of the state and restores it if anything fails, so memory, store and kernel agree.

pub(crate) mod cni_ipam;
mod external;
mod introspect;
mod network;
mod ports;
mod reconcile;
mod sandbox;
mod txn;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use drivers::Driver;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::model::{EndpointRec, NetworkRec, SandboxRec};
use crate::store::{Kind, Store};

pub use external::{ExternalJoin, ExternalNetwork};
pub use network::now_rfc3339;
pub use reconcile::ReconcileReport;
pub use sandbox::{endpoint_rest, ConnectOpts, HOST_NETNS};
pub use txn::Txn;

/// Daemon configuration the controller needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    /// Runtime files: namespaces under `<exec_root>/netns`, per-sandbox files.
    pub exec_root: PathBuf,
    pub default_pools: Vec<ipam::DefaultPool>,
    /// Bridge name of the default `bridge` network.
    pub default_bridge: String,
    /// Whether to create the default `bridge` network.
    pub create_default_bridge: bool,
    /// Serve published ports from the host itself with the userland proxy.
    pub userland_proxy: bool,
}

/// A map of records by id. Persistent (structure-sharing): cloning the whole state to
/// publish it after an operation costs O(1) plus the nodes the operation changed, so
/// the cost of an operation does not grow with the number of objects.
pub type Map<V> = imbl::OrdMap<String, V>;

/// Everything netd knows; mirrored in the store.
#[derive(Debug, Clone)]
pub struct State {
    pub networks: Map<NetworkRec>,
    pub endpoints: Map<EndpointRec>,
    pub sandboxes: Map<SandboxRec>,
    pub ipam: ipam::Ipam,
}

pub struct Controller {
    pub(crate) state: Mutex<State>,
    /// A copy of the state as of the last finished operation. Readers (list, inspect)
    /// use it, so they never wait behind a queue of writers.
    pub(crate) published: arc_swap::ArcSwap<State>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) drivers: BTreeMap<&'static str, Arc<dyn Driver>>,
    pub(crate) kernel: crate::kernel::Kernel,
    /// The bridge driver itself, for firewall reconciliation.
    pub(crate) bridge: Option<Arc<drivers::bridge::BridgeDriver>>,
    /// The embedded DNS (None when disabled).
    pub(crate) dns: Option<Arc<crate::dns::Dns>>,
    pub cfg: Config,
    /// The userland proxy (None with `--userland-proxy=false`).
    pub(crate) proxy: Option<proxy::Proxy>,
    pub(crate) userland_proxy: bool,
    /// Running proxies per endpoint id.
    pub(crate) proxies:
        std::sync::Mutex<std::collections::HashMap<String, Vec<proxy::ProxyHandle>>>,
}

/// A new 64-hex-character id, like Docker's.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Docker's name rule for networks, sandboxes and containers.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::bad(format!(
            "invalid {what} name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// Find an object by full id, exact name, or unique id prefix.
pub fn resolve<'a, T: Clone>(
    what: &str,
    map: &'a Map<T>,
    name_of: impl Fn(&T) -> &str,
    key: &str,
) -> Result<&'a T> {
    if let Some(v) = map.get(key) {
        return Ok(v);
    }
    if let Some(v) = map.values().find(|v| name_of(v) == key) {
        return Ok(v);
    }
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) {
        let mut it = map
            .range(key.to_string()..)
            .take_while(|(k, _)| k.starts_with(key));
        if let Some((_, v)) = it.next() {
            if it.next().is_some() {
                return Err(Error::bad(format!("{what} id prefix {key:?} is ambiguous")));
            }
            return Ok(v);
        }
    }
    Err(Error::not_found(format!("no such {what}: {key}")))
}

impl State {
    pub fn network(&self, key: &str) -> Result<&NetworkRec> {
        resolve("network", &self.networks, |n| n.name.as_str(), key)
    }
    pub fn sandbox(&self, key: &str) -> Result<&SandboxRec> {
        resolve("sandbox", &self.sandboxes, |s| s.name.as_str(), key)
    }
    pub fn endpoint(&self, key: &str) -> Result<&EndpointRec> {
        resolve("endpoint", &self.endpoints, |e| e.name.as_str(), key)
    }
    pub fn endpoints_of_network(&self, net_id: &str) -> Vec<&EndpointRec> {
        self.endpoints
            .values()
            .filter(|e| e.network_id == net_id)
            .collect()
    }
}

impl Controller {
    /// Load the state from the store (or start empty) and wire the drivers.
    pub fn new(
        cfg: Config,
        store: Arc<dyn Store>,
        drivers: Vec<Arc<dyn Driver>>,
        kernel: crate::kernel::Kernel,
    ) -> Result<Self> {
        let state = load_state(&*store, &cfg)?;
        let drivers = drivers.into_iter().map(|d| (d.name(), d)).collect();
        let proxy = if cfg.userland_proxy {
            Some(
                proxy::Proxy::new(proxy::ProxyConfig::default())
                    .map_err(|e| Error::internal(format!("userland proxy: {e}")))?,
            )
        } else {
            None
        };
        Ok(Controller {
            published: arc_swap::ArcSwap::from_pointee(state.clone()),
            state: Mutex::new(state),
            store,
            drivers,
            kernel,
            bridge: None,
            dns: None,
            userland_proxy: cfg.userland_proxy,
            cfg,
            proxy,
            proxies: Default::default(),
        })
    }

    /// Give the controller the bridge driver for firewall reconciliation.
    pub fn set_bridge(&mut self, b: Arc<drivers::bridge::BridgeDriver>) {
        self.bridge = Some(b);
    }

    /// Turn on the embedded DNS (before the controller is shared).
    pub fn set_dns(&mut self, dns: Arc<crate::dns::Dns>) {
        self.dns = Some(dns);
    }

    pub fn dns(&self) -> Option<&Arc<crate::dns::Dns>> {
        self.dns.as_ref()
    }

    /// Rewrite a sandbox's hosts/resolv.conf/hostname after it changed.
    pub(crate) fn sandbox_changed(&self, st: &State, sid: &str) {
        if let Some(sb) = st.sandboxes.get(sid) {
            if let Err(e) =
                crate::dns::write_sandbox_files(&self.cfg.exec_root, st, sb, self.dns.as_deref())
            {
                tracing::warn!(sandbox = %sid, error = %e, "writing sandbox files");
            }
        }
    }

    pub(crate) fn driver(&self, name: &str) -> Result<Arc<dyn Driver>> {
        let name = if name == "none" { "null" } else { name };
        self.drivers.get(name).cloned().ok_or_else(|| {
            let known: Vec<_> = self.drivers.keys().copied().collect();
            Error::bad(format!(
                "unknown network driver {name:?} (available: {})",
                known.join(", ")
            ))
        })
    }

    /// A read-only copy of the state (for listing and inspecting).
    pub async fn snapshot(&self) -> State {
        (**self.published.load()).clone()
    }

    /// The state as of the last finished operation, without waiting for any lock.
    pub fn view(&self) -> Arc<State> {
        self.published.load_full()
    }

    /// Create the pre-defined networks (`bridge`, `host`, `none`) when missing, and
    /// make sure every stored network exists in the kernel (drivers are idempotent).
    pub async fn start(&self) -> Result<()> {
        let predefined: Vec<(&str, &str)> = {
            let mut v = vec![("none", "null"), ("host", "host")];
            if self.cfg.create_default_bridge && self.drivers.contains_key("bridge") {
                v.insert(0, ("bridge", "bridge"));
            }
            v
        };
        for (name, driver) in predefined {
            let exists = self
                .state
                .lock()
                .await
                .networks
                .values()
                .any(|n| n.name == name);
            if !exists {
                let mut options = BTreeMap::new();
                if driver == "bridge" {
                    options.insert(
                        "com.docker.network.bridge.name".to_string(),
                        self.cfg.default_bridge.clone(),
                    );
                    options.insert(
                        "com.docker.network.bridge.default_bridge".to_string(),
                        "true".to_string(),
                    );
                }
                self.create_network(plugin_api::rest::NetworkCreate {
                    name: name.to_string(),
                    driver: Some(driver.to_string()),
                    options,
                    labels: [(PREDEFINED_LABEL.to_string(), "true".to_string())].into(),
                    ..Default::default()
                })
                .await?;
            }
        }
        // Finish or undo whatever a previous run left half-done (crash, reboot).
        let rep = self.reconcile().await?;
        if !rep.errors.is_empty() {
            tracing::warn!(errors = ?rep.errors, "start-up reconciliation left problems");
        }
        if let Some(d) = &self.dns {
            let st = self.state.lock().await;
            d.sync(&st).await;
            for id in st.sandboxes.keys() {
                self.sandbox_changed(&st, id);
            }
        }
        Ok(())
    }

    /// Run `op` on the state; restore the state if it fails.
    pub(crate) async fn with_state<T>(
        &self,
        op: impl for<'a> FnOnce(
            &'a mut State,
            &'a Controller,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>,
        >,
    ) -> Result<T> {
        let mut guard = self.state.lock().await;
        match op(&mut guard, self).await {
            Ok(v) => {
                if let Some(d) = &self.dns {
                    d.sync(&guard).await;
                }
                self.published.store(Arc::new(guard.clone()));
                Ok(v)
            }
            Err(e) => {
                // Memory must equal the store: operations undo their own commits, but if
                // anything was left committed, the store wins over the snapshot.
                *guard = match load_state(&*self.store, &self.cfg) {
                    Ok(s) => s,
                    Err(le) => {
                        tracing::error!(error = %le, "reloading state after a failed operation");
                        // The published copy is the state before this operation.
                        (**self.published.load()).clone()
                    }
                };
                if let Some(d) = &self.dns {
                    d.sync(&guard).await;
                }
                self.published.store(Arc::new(guard.clone()));
                Err(e)
            }
        }
    }
}

pub(crate) fn is_predefined(name: &str) -> bool {
    matches!(name, "bridge" | "host" | "none")
}

/// Label netd puts on the networks it pre-defines at start-up.
pub const PREDEFINED_LABEL: &str = "com.netd.predefined";

/// The whole state as the store has it.
pub(crate) fn load_state(store: &dyn Store, cfg: &Config) -> Result<State> {
    let snap = store.load()?;
    let decode = |kind: Kind| -> Result<Vec<(String, Vec<u8>)>> {
        Ok(snap
            .get(&kind)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    };
    fn parse<T: serde::de::DeserializeOwned>(k: &str, v: &[u8]) -> Result<T> {
        serde_json::from_slice(v)
            .map_err(|e| Error::internal(format!("corrupt store record {k}: {e}")))
    }
    let mut state = State {
        networks: Map::new(),
        endpoints: Map::new(),
        sandboxes: Map::new(),
        ipam: ipam::Ipam::with_default_pools(
            cfg.default_pools.clone(),
            ipam::DefaultPool::docker_global(),
        ),
    };
    for (k, v) in decode(Kind::Network)? {
        state.networks.insert(k.clone(), parse(&k, &v)?);
    }
    for (k, v) in decode(Kind::Endpoint)? {
        state.endpoints.insert(k.clone(), parse(&k, &v)?);
    }
    for (k, v) in decode(Kind::Sandbox)? {
        state.sandboxes.insert(k.clone(), parse(&k, &v)?);
    }
    if let Some(v) = snap.get(&Kind::Meta).and_then(|m| m.get("ipam")) {
        state.ipam = parse("ipam", v)?;
        // The flags of this start win over the pools saved with the state.
        state
            .ipam
            .set_default_pools(ipam::AddressSpace::Local, cfg.default_pools.clone());
    }
    Ok(state)
}
