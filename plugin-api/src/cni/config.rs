//! The network configuration a CNI plugin receives on stdin, decoded into typed values with
//! error messages that name the offending key. Unknown keys are ignored (the spec says to
//! pass them through); JSON `null` counts as absent. Type and value errors are code 7,
//! recognised keys with values netd does not support are code 2.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde_json::{Map, Value};

use super::env::{check_ifname, parse_ip_loose, parse_mac, validate_network_name};
use super::error::CniError;
use super::result::Dns;
use super::version::CniVersion;

/// The plugin type (binary name) of netd's CNI plugin.
pub const PLUGIN_TYPE: &str = "netd-cni";

/// Typed access to one JSON object, with the key path used in messages.
pub(crate) struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 64 {
        format!("{}...", s.chars().take(61).collect::<String>())
    } else {
        s
    }
}

impl<'a> Fields<'a> {
    pub(crate) fn new(obj: &'a Map<String, Value>, prefix: &str) -> Self {
        Self {
            obj,
            prefix: prefix.to_string(),
        }
    }

    fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn bad(&self, key: &str, want: &str, v: &Value) -> CniError {
        CniError::invalid_config(format!(
            "invalid network config: `{}` must be {want}, got {}",
            self.path(key),
            describe(v)
        ))
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, key: &str) -> Result<Option<&'a str>, CniError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.bad(key, "a string", v)),
        }
    }

    /// A boolean; the strings "true"/"false" are accepted too (0.4.0's `disableCheck`).
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, CniError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(v) => Err(self.bad(key, "a boolean", v)),
        }
    }

    pub(crate) fn uint(&self, key: &str, max: u64) -> Result<Option<u64>, CniError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(self.bad(key, &format!("an integer from 0 to {max}"), v)),
            },
        }
    }

    pub(crate) fn obj(&self, key: &str) -> Result<Option<Fields<'a>>, CniError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Fields::new(m, &format!("{}.", self.path(key))))),
            Some(v) => Err(self.bad(key, "an object", v)),
        }
    }

    pub(crate) fn list(&self, key: &str) -> Result<&'a [Value], CniError> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(self.bad(key, "a list", v)),
        }
    }

    fn str_list(&self, key: &str) -> Result<Vec<String>, CniError> {
        self.list(key)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(self.bad(key, "a list of strings", other)),
            })
            .collect()
    }

    /// First present key among `keys` (camelCase and containerd's PascalCase spellings).
    fn pick(&self, keys: &[&'static str]) -> &'static str {
        keys.iter()
            .copied()
            .find(|k| self.get(k).is_some())
            .unwrap_or(keys[0])
    }

    fn cidr(&self, key: &str) -> Result<Option<IpNetwork>, CniError> {
        match self.str(key)? {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| self.bad(key, "a CIDR like 10.88.0.0/16", &Value::from(s))),
        }
    }

    fn ip(&self, key: &str) -> Result<Option<IpAddr>, CniError> {
        match self.str(key)? {
            None | Some("") => Ok(None),
            Some(s) => parse_ip_loose(s)
                .map(Some)
                .map_err(|_| self.bad(key, "an IP address", &Value::from(s))),
        }
    }

    fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>, CniError> {
        let Some(m) = self.obj(key)? else {
            return Ok(BTreeMap::new());
        };
        m.obj
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Bool(_) | Value::Number(_) => Ok((k.clone(), v.to_string())),
                other => Err(m.bad(k, "a string", other)),
            })
            .collect()
    }
}

/// A published port from `runtimeConfig.portMappings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// `None` = all addresses.
    pub host_ip: Option<IpAddr>,
}

/// The `dns` capability (`runtimeConfig.dns`; key names differ from a result's `dns`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeDns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// Capability arguments the runtime injected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub port_mappings: Vec<PortMapping>,
    pub ips: Vec<IpAddr>,
    pub mac: Option<String>,
    pub dns: Option<RuntimeDns>,
}

/// A `cni.dev/valid-attachments` entry (GC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
}

/// netd's own configuration keys. In interface mode they are top-level keys of the plugin
/// object; in IPAM mode they are read from the `ipam` object and the interface keys
/// (`bridge`, `ipMasq`, `isGateway`, `mtu`) are left unset (they belong to the main plugin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetdSettings {
    /// netd network name (`network`, default: the config's `name`).
    pub network: String,
    /// `driver` (default: netd's default, bridge).
    pub driver: Option<String>,
    pub subnet: Option<IpNetwork>,
    pub gateway: Option<IpAddr>,
    pub subnet6: Option<IpNetwork>,
    pub gateway6: Option<IpAddr>,
    /// `ipv6`; implied by `subnet6`.
    pub ipv6: bool,
    /// `internal`: no outside connectivity.
    pub internal: bool,
    pub bridge: Option<String>,
    pub ip_masq: Option<bool>,
    pub is_gateway: Option<bool>,
    pub mtu: Option<u32>,
    /// netd socket path (`socket`).
    pub socket: Option<String>,
    /// Driver options (`options`, string map).
    pub options: BTreeMap<String, String>,
}

/// A decoded network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub cni_version: CniVersion,
    pub name: String,
    /// `type`.
    pub plugin_type: String,
    /// `ipam.type`, if an `ipam` object is present.
    pub ipam_type: Option<String>,
    /// The `ipam` object as given.
    pub ipam: Option<Map<String, Value>>,
    pub dns: Option<Dns>,
    pub runtime_config: RuntimeConfig,
    pub capabilities: BTreeMap<String, bool>,
    /// `args.cni.ips`.
    pub args_ips: Vec<IpAddr>,
    /// `args.cni.mac`.
    pub args_mac: Option<String>,
    pub disable_check: bool,
    pub disable_gc: bool,
    /// `prevResult` as given (parsed later against the version).
    pub prev_result: Option<Value>,
    /// `cni.dev/valid-attachments` (or the older `cni.dev/attachments`), if present.
    pub valid_attachments: Option<Vec<Attachment>>,
}

/// Whether this config asks netd-cni to act as an IPAM plugin: see the crate docs of
/// [`crate::cni`] for the rule.
pub fn is_ipam_mode(plugin_type: &str, ipam_type: Option<&str>) -> bool {
    plugin_type != PLUGIN_TYPE && ipam_type == Some(PLUGIN_TYPE)
}

/// Reads `cniVersion` alone (missing ⇒ code 1, as a missing version means 0.1.0).
pub fn parse_version(config: &Value) -> Result<CniVersion, CniError> {
    let obj = config.as_object().ok_or_else(|| {
        CniError::decode(format!(
            "network config must be a JSON object, got {}",
            describe(config)
        ))
    })?;
    match obj.get("cniVersion") {
        None | Some(Value::Null) => Err(CniError::incompatible_version(
            "network config has no cniVersion (that means 0.1.0, which netd-cni does not support)",
        )),
        Some(Value::String(s)) => CniVersion::parse(s),
        Some(v) => Err(CniError::decode(format!(
            "cniVersion must be a string, got {}",
            describe(v)
        ))),
    }
}

impl NetConf {
    /// Decodes and validates a configuration.
    pub fn parse(config: &Value) -> Result<Self, CniError> {
        let cni_version = parse_version(config)?;
        let obj = config.as_object().expect("checked by parse_version");
        let f = Fields::new(obj, "");
        let name = f.str("name")?.unwrap_or_default().to_string();
        validate_network_name(&name)?;
        let plugin_type = f.str("type")?.unwrap_or_default().to_string();
        if plugin_type.is_empty() {
            return Err(CniError::invalid_config(
                "invalid network config: `type` is missing",
            ));
        }
        let ipam_obj = f.obj("ipam")?;
        let ipam_type = match &ipam_obj {
            Some(i) => i.str("type")?.map(str::to_string),
            None => None,
        };
        let dns = f.obj("dns")?.map(|d| parse_dns(&d)).transpose()?;
        let runtime_config = match f.obj("runtimeConfig")? {
            Some(rc) => parse_runtime_config(&rc)?,
            None => RuntimeConfig::default(),
        };
        let mut capabilities = BTreeMap::new();
        if let Some(c) = f.obj("capabilities")? {
            for k in c.obj.keys() {
                capabilities.insert(k.clone(), c.bool(k)?.unwrap_or(false));
            }
        }
        let (mut args_ips, mut args_mac) = (Vec::new(), None);
        if let Some(cni) = f.obj("args")?.map(|a| a.obj("cni")).transpose()?.flatten() {
            for v in cni.list("ips")? {
                let s = v
                    .as_str()
                    .ok_or_else(|| cni.bad("ips", "a list of strings", v))?;
                args_ips.push(
                    parse_ip_loose(s).map_err(|_| cni.bad("ips", "a list of IP addresses", v))?,
                );
            }
            if let Some(m) = cni.str("mac")? {
                args_mac = Some(
                    parse_mac(m).map_err(|_| cni.bad("mac", "a MAC address", &Value::from(m)))?,
                );
            }
        }
        let valid_attachments = match ["cni.dev/valid-attachments", "cni.dev/attachments"]
            .into_iter()
            .find(|k| f.get(k).is_some())
        {
            Some(k) => Some(parse_attachments(&f, k)?),
            None => None,
        };
        Ok(Self {
            cni_version,
            name,
            plugin_type,
            ipam_type,
            ipam: ipam_obj.map(|i| i.obj.clone()),
            dns,
            runtime_config,
            capabilities,
            args_ips,
            args_mac,
            disable_check: f.bool("disableCheck")?.unwrap_or(false),
            disable_gc: f.bool("disableGC")?.unwrap_or(false),
            prev_result: f.get("prevResult").cloned(),
            valid_attachments,
        })
    }

    /// See [`is_ipam_mode`].
    pub fn ipam_mode(&self) -> bool {
        is_ipam_mode(&self.plugin_type, self.ipam_type.as_deref())
    }

    /// Decodes netd's keys from the right object for the mode.
    pub fn netd_settings(&self, config: &Value) -> Result<NetdSettings, CniError> {
        let obj = config.as_object().expect("parsed config is an object");
        if self.ipam_mode() {
            let ipam = self
                .ipam
                .as_ref()
                .expect("ipam mode implies an ipam object");
            let f = Fields::new(ipam, "ipam.");
            let mut s = parse_netd_common(&f, &self.name)?;
            if s.socket.is_none() {
                s.socket = Fields::new(obj, "").str("socket")?.map(str::to_string);
            }
            return Ok(s);
        }
        if self.plugin_type != PLUGIN_TYPE {
            return Err(CniError::invalid_config(format!(
                "invalid network config: type is {:?} and ipam.type is {:?}; netd-cni needs type \"netd-cni\" or ipam.type \"netd-cni\"",
                self.plugin_type,
                self.ipam_type.as_deref().unwrap_or("")
            )));
        }
        if let Some(t) = self
            .ipam_type
            .as_deref()
            .filter(|t| !t.is_empty() && *t != PLUGIN_TYPE)
        {
            return Err(CniError::unsupported_field(format!(
                "unsupported config field: ipam.type {t:?} (netd-cni allocates addresses itself; omit ipam or use \"netd-cni\")"
            )));
        }
        let f = Fields::new(obj, "");
        let mut s = parse_netd_common(&f, &self.name)?;
        if let Some(b) = f.str("bridge")? {
            check_ifname(b).map_err(|r| {
                CniError::invalid_config(format!("invalid network config: `bridge` {b:?} {r}"))
            })?;
            s.bridge = Some(b.to_string());
        }
        s.ip_masq = f.bool("ipMasq")?;
        s.is_gateway = f.bool("isGateway")?;
        s.mtu = f.uint("mtu", 65535)?.map(|m| m as u32);
        if let Some(m) = s.mtu.filter(|m| *m < 68) {
            return Err(CniError::invalid_config(format!(
                "invalid network config: `mtu` {m} is below the minimum of 68"
            )));
        }
        Ok(s)
    }
}

fn parse_netd_common(f: &Fields<'_>, name: &str) -> Result<NetdSettings, CniError> {
    let network = f.str("network")?.unwrap_or(name).to_string();
    validate_network_name(&network).map_err(|e| {
        CniError::invalid_config(format!(
            "invalid network config: `{}`: {}",
            f.path("network"),
            e.msg
        ))
    })?;
    let subnet = f.cidr("subnet")?;
    let gateway = f.ip("gateway")?;
    let subnet6 = f.cidr("subnet6")?;
    let gateway6 = f.ip("gateway6")?;
    let fam =
        |key: &str, v6: bool, net: Option<IpNetwork>, gw: Option<IpAddr>| -> Result<(), CniError> {
            let bad = |m: String| CniError::invalid_config(format!("invalid network config: {m}"));
            if let Some(n) = net {
                if n.is_ipv6() != v6 {
                    return Err(bad(format!(
                        "`{}` {n} must be IPv{}",
                        f.path(key),
                        if v6 { 6 } else { 4 }
                    )));
                }
            }
            if let Some(g) = gw {
                if g.is_ipv6() != v6 {
                    return Err(bad(format!(
                        "gateway {g} for `{}` must be IPv{}",
                        f.path(key),
                        if v6 { 6 } else { 4 }
                    )));
                }
                match net {
                    Some(n) if !n.contains(g) => {
                        return Err(bad(format!("gateway {g} is outside `{}` {n}", f.path(key))))
                    }
                    None => return Err(bad(format!("a gateway needs `{}`", f.path(key)))),
                    _ => {}
                }
            }
            Ok(())
        };
    fam("subnet", false, subnet, gateway)?;
    fam("subnet6", true, subnet6, gateway6)?;
    let ipv6 = f.bool("ipv6")?.unwrap_or(false) || subnet6.is_some();
    Ok(NetdSettings {
        network,
        driver: f
            .str("driver")?
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        subnet,
        gateway,
        subnet6,
        gateway6,
        ipv6,
        internal: f.bool("internal")?.unwrap_or(false),
        socket: f
            .str("socket")?
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        options: f.string_map("options")?,
        ..NetdSettings::default()
    })
}

fn parse_dns(d: &Fields<'_>) -> Result<Dns, CniError> {
    Ok(Dns {
        nameservers: d.str_list("nameservers")?,
        domain: d.str("domain")?.unwrap_or_default().to_string(),
        search: d.str_list("search")?,
        options: d.str_list("options")?,
    })
}

fn parse_runtime_config(rc: &Fields<'_>) -> Result<RuntimeConfig, CniError> {
    let mut out = RuntimeConfig::default();
    for (i, pm) in rc.list("portMappings")?.iter().enumerate() {
        let Value::Object(m) = pm else {
            return Err(rc.bad("portMappings", "a list of objects", pm));
        };
        let p = Fields::new(m, &format!("runtimeConfig.portMappings[{i}]."));
        let hk = p.pick(&["hostPort", "HostPort"]);
        let ck = p.pick(&["containerPort", "ContainerPort"]);
        let host = p.uint(hk, 65535)?.unwrap_or(0);
        let cont = p.uint(ck, 65535)?.unwrap_or(0);
        if host == 0 || cont == 0 {
            return Err(CniError::invalid_config(format!(
                "invalid network config: `{}{hk}` and `{ck}` must be 1-65535, got {host} and {cont}",
                p.prefix
            )));
        }
        let proto = p
            .str(p.pick(&["protocol", "Protocol"]))?
            .filter(|s| !s.is_empty())
            .unwrap_or("tcp")
            .to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(CniError::unsupported_field(format!(
                "unsupported config field: `{}protocol` {proto:?} (tcp, udp or sctp)",
                p.prefix
            )));
        }
        out.port_mappings.push(PortMapping {
            host_port: host as u16,
            container_port: cont as u16,
            protocol: proto,
            host_ip: p.ip(p.pick(&["hostIP", "HostIP"]))?,
        });
    }
    for v in rc.list("ips")? {
        let s = v
            .as_str()
            .ok_or_else(|| rc.bad("ips", "a list of strings", v))?;
        out.ips
            .push(parse_ip_loose(s).map_err(|_| rc.bad("ips", "a list of IP addresses", v))?);
    }
    if let Some(m) = rc.str("mac")? {
        out.mac = Some(parse_mac(m).map_err(|_| rc.bad("mac", "a MAC address", &Value::from(m)))?);
    }
    if let Some(d) = rc.obj("dns")? {
        out.dns = Some(RuntimeDns {
            servers: d.str_list("servers")?,
            searches: d.str_list("searches")?,
            options: d.str_list("options")?,
        });
    }
    Ok(out)
}

fn parse_attachments(f: &Fields<'_>, key: &str) -> Result<Vec<Attachment>, CniError> {
    f.list(key)?
        .iter()
        .map(|a| {
            let Value::Object(m) = a else {
                return Err(f.bad(key, "a list of {containerID, ifname} objects", a));
            };
            let af = Fields::new(m, &format!("{key}[]."));
            let container_id = af.str("containerID")?.unwrap_or_default().to_string();
            let ifname = af.str("ifname")?.unwrap_or_default().to_string();
            if container_id.is_empty() || ifname.is_empty() {
                return Err(f.bad(key, "a list of {containerID, ifname} objects", a));
            }
            Ok(Attachment {
                container_id,
                ifname,
            })
        })
        .collect()
}
