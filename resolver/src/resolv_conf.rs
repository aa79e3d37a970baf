//! A parser for `/etc/resolv.conf` text, so the daemon can derive the default upstreams from
//! the host's configuration. Forwarding runs in the daemon's (host) namespace, so loopback
//! nameservers such as systemd-resolved's `127.0.0.53` are reachable and are kept.

use std::net::{IpAddr, SocketAddr};

/// What [`parse_resolv_conf`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines, in order, with port 53.
    pub nameservers: Vec<SocketAddr>,
    /// The search list (`search`, or `domain` when it comes last, as glibc does).
    pub search: Vec<String>,
    /// Every word of every `options` line (`ndots:2`, `edns0`, …), in order.
    pub options: Vec<String>,
}

/// Parses resolv.conf text. Unknown directives, comments (`#`, `;`) and unparsable nameserver
/// addresses are skipped; IPv6 nameservers with a zone (`fe80::1%eth0`) are skipped too since
/// a zone cannot be resolved to an interface index without I/O.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut out = ResolvConf::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) {
                    out.nameservers.push(SocketAddr::new(ip, 53));
                }
            }
            Some("search") => out.search = words.map(str::to_string).collect(),
            Some("domain") => out.search = words.take(1).map(str::to_string).collect(),
            Some("options") => out.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_typical_file() {
        let text = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # lan\n\
                    nameserver fe80::1%eth0\nnameserver 2001:db8::53\nnameserver bogus\n\
                    search corp.example  example.com\noptions ndots:2 edns0\n; comment\n\
                    options timeout:1\n";
        let rc = parse_resolv_conf(text);
        assert_eq!(
            rc.nameservers,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap(),
                "[2001:db8::53]:53".parse().unwrap()
            ]
        );
        assert_eq!(rc.search, vec!["corp.example", "example.com"]);
        assert_eq!(rc.options, vec!["ndots:2", "edns0", "timeout:1"]);
    }

    #[test]
    fn last_of_domain_and_search_wins() {
        let rc = parse_resolv_conf("search a.example b.example\ndomain c.example\n");
        assert_eq!(rc.search, vec!["c.example"]);
        assert_eq!(parse_resolv_conf(""), ResolvConf::default());
    }
}
