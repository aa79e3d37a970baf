//! Lenient serde helpers for Docker's Go-encoded JSON: Go writes `null` for nil maps and
//! slices, `""` for unset addresses, and `map[string]string` values are always strings.
//! These helpers turn those shapes into Rust defaults and typed addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `null` (or a missing field, with `#[serde(default)]`) becomes `T::default()`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Parses `"a.b.c.d"` or `"a.b.c.d/nn"` into the address (the mask is dropped).
pub(crate) fn parse_ip_or_cidr(s: &str) -> Result<IpAddr, String> {
    let s = s.trim();
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    IpAddr::from_str(addr).map_err(|e| format!("invalid IP address {s:?}: {e}"))
}

/// Parses a CIDR (`"172.18.0.1/16"`; a bare address gets a full-length mask).
pub(crate) fn parse_cidr(s: &str) -> Result<IpNetwork, String> {
    IpNetwork::from_str(s.trim()).map_err(|e| format!("invalid CIDR {s:?}: {e}"))
}

/// Optional CIDR: absent, `null` and `""` are `None`.
pub(crate) fn opt_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpNetwork>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_cidr(&s).map(Some).map_err(D::Error::custom),
    }
}

/// Optional address given as `"ip"` or `"ip/len"`: absent, `null` and `""` are `None`.
pub(crate) fn opt_ip<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_ip_or_cidr(&s).map(Some).map_err(D::Error::custom),
    }
}

/// Required address given as `"ip"` or `"ip/len"`.
pub(crate) fn ip<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    parse_ip_or_cidr(&s).map_err(D::Error::custom)
}

/// Optional string: `null` and `""` are `None`.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// Map of CIDR strings (`AuxAddresses`); `null` is empty.
pub(crate) fn cidr_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, IpNetwork>, D::Error> {
    let raw: BTreeMap<String, String> = null_default(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            parse_cidr(&v)
                .map(|n| (k.clone(), n))
                .map_err(|e| D::Error::custom(format!("AuxAddresses[{k}]: {e}")))
        })
        .collect()
}

/// Turns a JSON scalar into the string Go's `map[string]string` would hold.
/// Objects and arrays are refused.
pub(crate) fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// `map[string]string`, tolerating `null` for the map and scalar non-string values.
pub(crate) fn string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: BTreeMap<String, Value> = null_default(d)?;
    raw.into_iter()
        .map(|(k, v)| match scalar_to_string(&v) {
            Some(s) => Ok((k, s)),
            None => Err(D::Error::custom(format!(
                "option {k:?}: expected a string, got {v}"
            ))),
        })
        .collect()
}
