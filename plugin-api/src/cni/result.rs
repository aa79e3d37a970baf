//! CNI ADD results. [`Result100`] is the current (1.1.0) shape the daemon returns; it is
//! printed in whatever version the request asked for ([`Result100::to_version`]: 0.3.x and
//! 0.4.0 add `"version": "4"|"6"` to each `ips` entry, versions before 1.1.0 drop the
//! 1.1.0-only interface/route fields) and parsed back from a `prevResult` of any supported
//! version ([`Result100::parse_any`]).

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::CniError;
use super::version::CniVersion;

fn is_empty_str(s: &str) -> bool {
    s.is_empty()
}

/// One interface the attachment created (host-side ones too; `sandbox` unset ⇒ on host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "is_empty_str")]
    pub mac: String,
    /// 1.1.0+.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Netns path for interfaces inside the container.
    #[serde(default, skip_serializing_if = "is_empty_str")]
    pub sandbox: String,
    /// 1.1.0+.
    #[serde(rename = "socketPath", default, skip_serializing_if = "is_empty_str")]
    pub socket_path: String,
    /// 1.1.0+.
    #[serde(rename = "pciID", default, skip_serializing_if = "is_empty_str")]
    pub pci_id: String,
}

impl Interface {
    /// A host-side interface.
    pub fn host(name: impl Into<String>, mac: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mac: mac.into(),
            ..Self::default()
        }
    }

    /// An interface inside the container's netns.
    pub fn container(
        name: impl Into<String>,
        mac: impl Into<String>,
        sandbox: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            mac: mac.into(),
            sandbox: sandbox.into(),
            ..Self::default()
        }
    }
}

/// One address; `interface` indexes [`Result100::interfaces`] (absent in IPAM results).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// A route; `gw` absent ⇒ use the address's gateway. The other fields are 1.1.0+.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u32>,
}

impl Route {
    pub fn new(dst: IpNetwork, gw: Option<IpAddr>) -> Self {
        Self {
            dst,
            gw,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

/// DNS settings of a result (and of a config's `dns` key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "is_empty_str")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// The current-version CNI result (libcni's `types100.Result`), also used as the builder
/// the daemon fills in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Result100 {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
}

impl Default for Result100 {
    fn default() -> Self {
        Self::new()
    }
}

impl Result100 {
    /// An empty 1.1.0 result.
    pub fn new() -> Self {
        Self {
            cni_version: CniVersion::LATEST.as_str().to_string(),
            interfaces: Vec::new(),
            ips: Vec::new(),
            routes: Vec::new(),
            dns: Dns::default(),
        }
    }

    /// Appends an interface and returns its index (for [`IpConfig::interface`]).
    pub fn add_interface(&mut self, iface: Interface) -> usize {
        self.interfaces.push(iface);
        self.interfaces.len() - 1
    }

    /// Builder form of [`Self::add_interface`].
    pub fn interface(mut self, iface: Interface) -> Self {
        self.add_interface(iface);
        self
    }

    /// Adds an address, optionally bound to an interface index.
    pub fn ip(mut self, address: IpNetwork, gateway: Option<IpAddr>, iface: Option<usize>) -> Self {
        self.ips.push(IpConfig {
            address,
            gateway,
            interface: iface,
        });
        self
    }

    pub fn route(mut self, dst: IpNetwork, gw: Option<IpAddr>) -> Self {
        self.routes.push(Route::new(dst, gw));
        self
    }

    pub fn dns(mut self, dns: Dns) -> Self {
        self.dns = dns;
        self
    }

    /// Checks that every `ips[].interface` points into `interfaces`.
    pub fn validate(&self) -> Result<(), String> {
        for ip in &self.ips {
            if let Some(i) = ip.interface {
                if i >= self.interfaces.len() {
                    return Err(format!(
                        "ips entry {} points at interface {i}, but there are {} interfaces",
                        ip.address,
                        self.interfaces.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The result as printed for `version`.
    pub fn to_version(&self, version: CniVersion) -> Value {
        let mut r = self.clone();
        r.cni_version = version.as_str().to_string();
        if version < CniVersion::V1_1_0 {
            for i in &mut r.interfaces {
                i.mtu = None;
                i.socket_path.clear();
                i.pci_id.clear();
            }
            for rt in &mut r.routes {
                *rt = Route::new(rt.dst, rt.gw);
            }
        }
        let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
        if version.ips_have_version() {
            if let Some(ips) = v.get_mut("ips").and_then(Value::as_array_mut) {
                for (entry, ip) in ips.iter_mut().zip(&r.ips) {
                    let fam = if ip.address.is_ipv4() { "4" } else { "6" };
                    entry["version"] = Value::String(fam.into());
                }
            }
        }
        v
    }

    /// Parses a result of any supported version (e.g. a `prevResult`). 0.3.x/0.4.0 `version`
    /// keys are checked against the address family and dropped. Errors are code 6.
    pub fn parse_any(v: &Value) -> Result<Self, CniError> {
        let err = |m: String| CniError::decode(format!("invalid prevResult: {m}"));
        let obj = v
            .as_object()
            .ok_or_else(|| err(format!("expected an object, got {v}")))?;
        if let Some(ver) = obj.get("cniVersion").filter(|v| !v.is_null()) {
            let s = ver
                .as_str()
                .ok_or_else(|| err(format!("cniVersion must be a string, got {ver}")))?;
            CniVersion::parse(s).map_err(|e| err(e.msg))?;
        }
        if let Some(ips) = obj.get("ips").and_then(Value::as_array) {
            for ip in ips {
                let (Some(ver), Some(addr)) = (ip.get("version"), ip.get("address")) else {
                    continue;
                };
                let want = match addr.as_str().map(|a| a.contains(':')) {
                    Some(true) => "6",
                    Some(false) => "4",
                    None => continue,
                };
                if ver.as_str() != Some(want) {
                    return Err(err(format!("ips entry {addr} has version {ver}")));
                }
            }
        }
        let r: Self = serde_json::from_value(v.clone()).map_err(|e| err(e.to_string()))?;
        r.validate().map_err(err)?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Result100 {
        let mut r = Result100::new();
        let br = r.add_interface(Interface::host("cni0", "00:11:22:33:44:55"));
        assert_eq!(br, 0);
        let mut eth0 = Interface::container("eth0", "99:88:77:66:55:44", "/var/run/netns/blue");
        eth0.mtu = Some(1500);
        r.interface(eth0)
            .ip(
                "10.1.0.5/16".parse().unwrap(),
                Some("10.1.0.1".parse().unwrap()),
                Some(1),
            )
            .ip("fd00::5/64".parse().unwrap(), None, Some(1))
            .route(
                "0.0.0.0/0".parse().unwrap(),
                Some("10.1.0.1".parse().unwrap()),
            )
            .dns(Dns {
                nameservers: vec!["10.1.0.1".into()],
                ..Dns::default()
            })
    }

    #[test]
    fn converts_per_version() {
        let mut r = sample();
        r.routes[0].priority = Some(100);
        let v11 = r.to_version(CniVersion::V1_1_0);
        assert_eq!(v11["cniVersion"], "1.1.0");
        assert_eq!(v11["interfaces"][1]["mtu"], 1500);
        assert_eq!(v11["routes"][0]["priority"], 100);
        assert!(v11["ips"][0].get("version").is_none());
        let v10 = r.to_version(CniVersion::V1_0_0);
        assert!(v10["interfaces"][1].get("mtu").is_none());
        assert!(v10["routes"][0].get("priority").is_none());
        assert!(v10["ips"][0].get("version").is_none());
        for v in [CniVersion::V0_3_0, CniVersion::V0_3_1, CniVersion::V0_4_0] {
            let o = r.to_version(v);
            assert_eq!(o["cniVersion"], v.as_str());
            assert_eq!(o["ips"][0]["version"], "4");
            assert_eq!(o["ips"][1]["version"], "6");
            assert_eq!(o["ips"][0]["interface"], 1);
            assert_eq!(o["ips"][0]["address"], "10.1.0.5/16");
            assert_eq!(o["dns"], json!({"nameservers": ["10.1.0.1"]}));
        }
    }

    #[test]
    fn round_trips_every_version() {
        let r = sample();
        for v in CniVersion::ALL {
            let back = Result100::parse_any(&r.to_version(v)).unwrap();
            assert_eq!(back.ips, r.ips);
            assert_eq!(back.interfaces.len(), 2);
            assert_eq!(back.cni_version, v.as_str());
        }
    }

    #[test]
    fn parse_errors() {
        for bad in [
            json!([]),
            json!({"cniVersion": 1}),
            json!({"cniVersion": "0.2.0"}),
            json!({"ips": [{"address": "10.0.0.1/24", "version": "6"}]}),
            json!({"ips": [{"address": "nope"}]}),
            json!({"ips": [{"address": "10.0.0.1/24", "interface": 3}]}),
        ] {
            assert_eq!(Result100::parse_any(&bad).unwrap_err().code, 6, "{bad}");
        }
        let ipam = Result100::parse_any(&json!({"cniVersion": "0.4.0",
            "ips": [{"version": "4", "address": "10.0.0.2/24", "gateway": "10.0.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}], "unknown": 1}))
        .unwrap();
        assert_eq!(ipam.ips[0].interface, None);
        assert_eq!(ipam.routes[0].gw, None);
    }
}
