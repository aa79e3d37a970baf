//! Bridge driver options: libnetwork's option names parsed into a typed
//! [`BridgeOptions`] in one place. Unknown keys are refused (a typo must not
//! silently give a different network).

use std::net::IpAddr;

use crate::{check_known_options, DriverError, NetworkSpec, Result};

pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_HOST_BINDING_IPV4: &str = "com.docker.network.bridge.host_binding_ipv4";
pub const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";

pub const KNOWN_OPTIONS: &[&str] = &[
    OPT_BRIDGE_NAME,
    OPT_MTU,
    OPT_MASQUERADE,
    OPT_ICC,
    OPT_HOST_BINDING_IPV4,
    OPT_DEFAULT_BRIDGE,
];

/// Linux IFNAMSIZ - 1.
pub const MAX_IFNAME: usize = 15;
/// IPv4 minimum MTU; IPv6 networks need 1280.
pub const MIN_MTU: u32 = 68;
pub const MIN_MTU_V6: u32 = 1280;
pub const MAX_MTU: u32 = 65535;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeOptions {
    pub bridge_name: String,
    pub mtu: Option<u32>,
    pub masquerade: bool,
    pub icc: bool,
    /// Default host address for published ports (used by port publishing).
    pub host_binding_ipv4: Option<IpAddr>,
    pub default_bridge: bool,
}

/// Go's strconv.ParseBool, which is what Docker users type.
fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(DriverError::InvalidArgument(format!(
            "option {key}: {v:?} is not a boolean"
        ))),
    }
}

/// Interface name rules from the kernel's dev_valid_name().
pub fn validate_ifname(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > MAX_IFNAME
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(DriverError::InvalidArgument(format!(
            "invalid bridge name {name:?} (1-{MAX_IFNAME} characters, no '/', ':' or spaces)"
        )));
    }
    Ok(())
}

/// Default bridge name: `br-` + the first 12 characters of the network id.
pub fn default_bridge_name(network_id: &str) -> String {
    format!("br-{}", network_id.chars().take(12).collect::<String>())
}

pub fn parse_bridge_options(spec: &NetworkSpec) -> Result<BridgeOptions> {
    check_known_options("bridge", &spec.options, KNOWN_OPTIONS)?;
    let o = &spec.options;
    let bridge_name = match o.get(OPT_BRIDGE_NAME) {
        Some(n) => n.clone(),
        None => default_bridge_name(&spec.id),
    };
    validate_ifname(&bridge_name)?;
    let mtu = match o.get(OPT_MTU) {
        None => None,
        // Docker treats 0 as "default".
        Some(v) if v == "0" => None,
        Some(v) => {
            let m: u32 = v.parse().map_err(|_| {
                DriverError::InvalidArgument(format!("option {OPT_MTU}: {v:?} is not a number"))
            })?;
            let min = if spec.enable_ipv6 {
                MIN_MTU_V6
            } else {
                MIN_MTU
            };
            if !(min..=MAX_MTU).contains(&m) {
                return Err(DriverError::InvalidArgument(format!(
                    "option {OPT_MTU}: {m} is outside {min}..={MAX_MTU}"
                )));
            }
            Some(m)
        }
    };
    let flag = |k: &str, default: bool| o.get(k).map_or(Ok(default), |v| parse_bool(k, v));
    let host_binding_ipv4 = match o.get(OPT_HOST_BINDING_IPV4) {
        None => None,
        Some(v) => Some(v.parse::<IpAddr>().map_err(|_| {
            DriverError::InvalidArgument(format!(
                "option {OPT_HOST_BINDING_IPV4}: {v:?} is not an IP address"
            ))
        })?),
    };
    Ok(BridgeOptions {
        bridge_name,
        mtu,
        masquerade: flag(OPT_MASQUERADE, true)?,
        icc: flag(OPT_ICC, true)?,
        host_binding_ipv4,
        default_bridge: flag(OPT_DEFAULT_BRIDGE, false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(opts: &[(&str, &str)]) -> NetworkSpec {
        NetworkSpec {
            id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
            name: "n".into(),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ipv4: vec![],
            ipv6: vec![],
            internal: false,
            enable_ipv6: false,
        }
    }

    #[test]
    fn defaults() {
        let o = parse_bridge_options(&spec(&[])).unwrap();
        assert_eq!(o.bridge_name, "br-0123456789ab");
        assert_eq!(o.mtu, None);
        assert!(o.masquerade && o.icc && !o.default_bridge);
        assert_eq!(o.host_binding_ipv4, None);
    }

    #[test]
    fn all_options() {
        let o = parse_bridge_options(&spec(&[
            (OPT_BRIDGE_NAME, "netd0"),
            (OPT_MTU, "1400"),
            (OPT_MASQUERADE, "false"),
            (OPT_ICC, "0"),
            (OPT_HOST_BINDING_IPV4, "127.0.0.1"),
            (OPT_DEFAULT_BRIDGE, "true"),
        ]))
        .unwrap();
        assert_eq!(
            o,
            BridgeOptions {
                bridge_name: "netd0".into(),
                mtu: Some(1400),
                masquerade: false,
                icc: false,
                host_binding_ipv4: Some("127.0.0.1".parse().unwrap()),
                default_bridge: true,
            }
        );
    }

    #[test]
    fn refusals() {
        let err = |o: &[(&str, &str)]| parse_bridge_options(&spec(o)).unwrap_err().to_string();
        assert!(err(&[("com.docker.network.bridge.nmae", "x")]).contains("does not support"));
        assert!(
            err(&[(OPT_BRIDGE_NAME, "a-very-long-bridge-name")]).contains("invalid bridge name")
        );
        assert!(err(&[(OPT_BRIDGE_NAME, "a/b")]).contains("invalid bridge name"));
        assert!(err(&[(OPT_BRIDGE_NAME, "")]).contains("invalid bridge name"));
        assert!(err(&[(OPT_MTU, "abc")]).contains("not a number"));
        assert!(err(&[(OPT_MTU, "67")]).contains("outside"));
        assert!(err(&[(OPT_MTU, "70000")]).contains("outside"));
        assert!(err(&[(OPT_ICC, "yes")]).contains("not a boolean"));
        assert!(err(&[(OPT_HOST_BINDING_IPV4, "localhost")]).contains("not an IP"));
        let mut s = spec(&[(OPT_MTU, "1000")]);
        s.enable_ipv6 = true;
        assert!(parse_bridge_options(&s).is_err());
        assert_eq!(
            parse_bridge_options(&spec(&[(OPT_MTU, "0")])).unwrap().mtu,
            None
        );
        assert!(parse_bridge_options(&spec(&[(OPT_BRIDGE_NAME, "abcdefghijklmno")])).is_ok());
    }
}
