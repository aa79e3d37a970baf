//! `netctl explain`: asks netd's `GET /explain` why something is the way it is and
//! prints the answer for a human (or the daemon's JSON with `--json`):
//! why `network rm` is refused, who holds a host port, what overlaps a subnet.
//!
//! The wire types are `plugin_api::explain`'s, shared with the daemon; every field
//! defaults so an older or newer daemon still prints.

use anyhow::Result;
use clap::Subcommand;
pub use plugin_api::explain::*;

use crate::client::{seg, Client};

#[derive(Subcommand)]
pub enum ExplainCmd {
    /// Why `netctl network rm NETWORK` is refused (endpoints, sandboxes, containers).
    #[command(alias = "network-rm")]
    Network { network: String },
    /// Who holds a host port: `[IP:]PORT[/tcp|udp]` (netd publisher or host process).
    Port { port: String },
    /// Which netd networks, pools or host routes overlap a subnet (CIDR).
    Subnet { subnet: String },
}

pub fn run(c: &Client, cmd: ExplainCmd, json: bool) -> Result<()> {
    let q = match &cmd {
        ExplainCmd::Network { network } => format!("network={}", seg(network)),
        ExplainCmd::Port { port } => format!("port={}", seg(port)),
        ExplainCmd::Subnet { subnet } => format!("subnet={}", seg(subnet)),
    };
    let v: serde_json::Value = c.get(&format!("/explain?{q}"))?;
    if json {
        crate::print::json(&v);
        return Ok(());
    }
    let text = match cmd {
        ExplainCmd::Network { .. } => network_text(&serde_json::from_value(v)?),
        ExplainCmd::Port { .. } => port_text(&serde_json::from_value(v)?),
        ExplainCmd::Subnet { .. } => subnet_text(&serde_json::from_value(v)?),
    };
    print!("{text}");
    Ok(())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn procs(p: &[ProcRef]) -> String {
    p.iter()
        .map(|p| {
            if p.cmdline.is_empty() {
                format!("pid {} ({})", p.pid, p.command)
            } else {
                format!("pid {} ({}: {})", p.pid, p.command, p.cmdline)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "sandbox web (container web of netd's runtime, running; pid 12 (sleep: sleep 100))".
pub fn sandbox_text(s: &SandboxRef) -> String {
    let mut out = format!("sandbox {}", s.name);
    let mut what = Vec::new();
    match &s.container {
        Some(c) if c.runtime == "netd" => what.push(format!(
            "container {} of netd's runtime{}",
            c.name.as_deref().unwrap_or(short(&c.id)),
            c.state
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default()
        )),
        Some(c) if c.runtime == "docker" => what.push(format!("Docker sandbox {}", short(&c.id))),
        Some(c) => what.push(format!("{} container {}", c.runtime.to_uppercase(), c.id)),
        None => what.push(format!("owner {}", s.owner)),
    }
    if !s.processes.is_empty() {
        what.push(format!("processes: {}", procs(&s.processes)));
    }
    out.push_str(&format!(" ({})", what.join("; ")));
    out
}

pub fn network_text(e: &NetworkExplain) -> String {
    let mut o = String::new();
    let head = format!(
        "network {} ({}, driver {}, owner {})",
        e.name,
        short(&e.id),
        e.driver,
        e.owner
    );
    if e.removable {
        o.push_str(&format!(
            "{head} can be removed: no endpoints are attached.\n"
        ));
        return o;
    }
    o.push_str(&format!("{head} cannot be removed:\n"));
    for r in &e.reasons {
        o.push_str(&format!("  - {r}\n"));
    }
    if !e.endpoints.is_empty() {
        o.push_str("Attached endpoints:\n");
        for ep in &e.endpoints {
            o.push_str(&format!(
                "  - endpoint {} [{}]",
                ep.name,
                ep.addresses.join(", ")
            ));
            match &ep.sandbox {
                Some(s) => o.push_str(&format!(" in {}\n", sandbox_text(s))),
                None => o.push_str(" (no sandbox)\n"),
            }
        }
    }
    if !e.fixes.is_empty() {
        o.push_str("To remove it, first:\n");
        for f in &e.fixes {
            o.push_str(&format!("  {f}\n"));
        }
    }
    o
}

pub fn port_text(e: &PortExplain) -> String {
    let mut o = String::new();
    let what = match &e.host_ip {
        Some(ip) => format!("{} port {ip}:{}", e.proto, e.port),
        None => format!("{} port {}", e.proto, e.port),
    };
    if e.free {
        o.push_str(&format!(
            "{what} is free: netd publishes nothing there and no host socket is bound to it.\n"
        ));
        return o;
    }
    o.push_str(&format!("{what}:\n"));
    for p in &e.published {
        o.push_str(&format!(
            "  published by netd: {}:{} -> {}:{} on network {}, endpoint {}",
            p.host_ip,
            p.host_port,
            p.container_ip,
            p.container_port,
            p.network_name,
            p.endpoint_name
        ));
        match &p.sandbox {
            Some(s) => o.push_str(&format!(", {}\n", sandbox_text(s))),
            None => o.push('\n'),
        }
    }
    for s in &e.sockets {
        let who = if s.processes.is_empty() {
            format!(
                "uid {}, inode {} (no process found: kernel-held or another namespace's)",
                s.uid, s.inode
            )
        } else {
            procs(&s.processes)
        };
        let tag = if s.netd {
            " [netd's own socket: userland proxy / port reservation]"
        } else {
            ""
        };
        o.push_str(&format!(
            "  host socket {}:{} {} held by {who}{tag}\n",
            s.local_ip, s.local_port, s.state
        ));
    }
    if e.published.is_empty() && !e.sockets.is_empty() {
        o.push_str("  (not netd's: publishing this port with netd will fail until that process releases it)\n");
    }
    o
}

pub fn subnet_text(e: &SubnetExplain) -> String {
    let mut o = String::new();
    if e.free {
        o.push_str(&format!(
            "subnet {} is free: no netd network, IPAM pool or host route overlaps it.\n",
            e.subnet
        ));
    } else {
        o.push_str(&format!("subnet {} overlaps:\n", e.subnet));
    }
    for n in &e.networks {
        o.push_str(&format!(
            "  netd network {} ({}, driver {}, owner {}): subnet {}, {} endpoint(s)\n",
            n.name,
            short(&n.id),
            n.driver,
            n.owner,
            n.subnet,
            n.endpoints
        ));
    }
    for p in &e.pools {
        o.push_str(&format!(
            "  IPAM pool {}: {}/{} addresses allocated{}\n",
            p.id,
            p.allocated,
            p.capacity,
            p.network
                .as_deref()
                .map(|n| format!(" (network {n})"))
                .unwrap_or_else(|| " (no netd network: Docker or CNI IPAM)".into())
        ));
    }
    for r in &e.host_routes {
        let mut d = format!("  host route {}", r.dst);
        if r.kind != "unicast" {
            d = format!("  host route {} {}", r.kind, r.dst);
        }
        if let Some(g) = &r.gateway {
            d.push_str(&format!(" via {g}"));
        }
        if let Some(dev) = &r.dev {
            d.push_str(&format!(" dev {dev}"));
        }
        d.push_str(&format!(" (table {}", r.table));
        if let Some(p) = &r.protocol {
            d.push_str(&format!(", proto {p}"));
        }
        d.push(')');
        if let Some(n) = &r.netd_network {
            d.push_str(&format!(" [bridge of netd network {n}]"));
        }
        o.push_str(&d);
        o.push('\n');
    }
    for p in &e.default_pools {
        o.push_str(&format!(
            "  note: netd's default address pool {p} overlaps; networks created without --subnet are carved from it\n"
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_network_names_sandbox_and_fix() {
        let e: NetworkExplain = serde_json::from_value(serde_json::json!({
            "kind": "network", "id": "abcdef0123456789", "name": "n1", "driver": "bridge",
            "owner": "netd", "removable": false, "reasons": ["1 endpoint(s) are attached"],
            "endpoints": [{"id": "e", "name": "ep1", "addresses": ["10.1.0.2/24"],
              "sandbox": {"id": "s", "name": "web", "owner": "netd", "netns_path": "/x",
                "container": {"runtime": "netd", "id": "s", "name": "web", "state": "running"},
                "processes": [{"pid": 42, "command": "sleep", "cmdline": "sleep 100"}]}}],
            "fixes": ["netctl rm -f web"], "future_field": 1
        }))
        .unwrap();
        let t = network_text(&e);
        assert!(t.contains("cannot be removed"), "{t}");
        assert!(t.contains("sandbox web (container web of netd's runtime, running; processes: pid 42 (sleep: sleep 100))"), "{t}");
        assert!(t.contains("netctl rm -f web"), "{t}");
    }

    #[test]
    fn free_port_and_foreign_holder() {
        let free = PortExplain {
            port: 9,
            proto: "udp".into(),
            free: true,
            ..Default::default()
        };
        assert!(port_text(&free).contains("udp port 9 is free"));
        let held = PortExplain {
            port: 8080,
            proto: "tcp".into(),
            sockets: vec![HostSocket {
                local_ip: "0.0.0.0".into(),
                local_port: 8080,
                state: "LISTEN".into(),
                processes: vec![ProcRef {
                    pid: 7,
                    command: "python3".into(),
                    cmdline: String::new(),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let t = port_text(&held);
        assert!(
            t.contains("0.0.0.0:8080 LISTEN held by pid 7 (python3)"),
            "{t}"
        );
        assert!(t.contains("not netd's"), "{t}");
    }
}
