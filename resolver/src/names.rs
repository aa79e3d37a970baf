//! Name helpers shared by the table and the handler: normalisation (lower case, no trailing
//! dot) and parsing of reverse-lookup names (`in-addr.arpa`, `ip6.arpa`) into addresses.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Lower-cases `name` and strips one trailing dot, borrowing when nothing changes.
pub(crate) fn normalize(name: &str) -> Cow<'_, str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Parses a full reverse name (already normalised: lower case, no trailing dot) into the
/// address it names. Partial names (`17.172.in-addr.arpa`) return `None`.
pub(crate) fn parse_reverse_name(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let mut n = 0;
        for label in rest.split('.') {
            if n == 4 || label.is_empty() || label.len() > 3 {
                return None;
            }
            if label.len() > 1 && label.starts_with('0') {
                return None;
            }
            octets[3 - n] = label.parse().ok()?;
            n += 1;
        }
        return (n == 4).then(|| IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Some(rest) = name.strip_suffix(".ip6.arpa") {
        let mut value: u128 = 0;
        let mut n = 0;
        for label in rest.split('.') {
            let b = label.as_bytes();
            if n == 32 || b.len() != 1 {
                return None;
            }
            let digit = (b[0] as char).to_digit(16)? as u128;
            value |= digit << (4 * n);
            n += 1;
        }
        return (n == 32).then(|| IpAddr::V6(Ipv6Addr::from(value)));
    }
    None
}

/// The reverse name of an address, fully qualified (used by tests and the bench).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(73);
            let v = u128::from(v6);
            for i in 0..32 {
                let nibble = (v >> (4 * i)) & 0xf;
                s.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa.");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_roundtrip() {
        for ip in ["172.17.0.2", "10.0.0.255", "fd00::1", "2001:db8::abcd:1"] {
            let ip: IpAddr = ip.parse().unwrap();
            let name = reverse_name(ip);
            assert_eq!(parse_reverse_name(&normalize(&name)), Some(ip), "{name}");
        }
    }

    #[test]
    fn reverse_rejects_partial_and_junk() {
        for n in [
            "17.172.in-addr.arpa",
            "1.2.3.4.5.in-addr.arpa",
            "256.0.0.1.in-addr.arpa",
            "01.0.0.1.in-addr.arpa",
            "a.b.c.d.in-addr.arpa",
            "1.ip6.arpa",
            "in-addr.arpa",
            "example.com",
        ] {
            assert_eq!(parse_reverse_name(n), None, "{n}");
        }
    }

    #[test]
    fn normalize_case_and_dot() {
        assert_eq!(normalize("Web.Example."), "web.example");
        assert_eq!(normalize("db"), "db");
        assert!(matches!(normalize("db"), Cow::Borrowed(_)));
    }
}
