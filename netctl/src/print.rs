//! Human output: tables for lists, pretty JSON for inspect.

use comfy_table::presets::NOTHING;
use comfy_table::Table;
use plugin_api::rest;
use serde::Serialize;

pub fn json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(NOTHING);
    t.set_header(header.to_vec());
    t
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn networks(v: &[rest::Network]) {
    let mut t = table(&[
        "NETWORK ID",
        "NAME",
        "DRIVER",
        "SUBNETS",
        "ENDPOINTS",
        "OWNER",
    ]);
    for n in v {
        let subnets: Vec<String> = n.subnets.iter().map(|s| s.subnet.to_string()).collect();
        t.add_row(vec![
            short(&n.id).to_string(),
            n.name.clone(),
            n.driver.clone(),
            subnets.join(","),
            n.endpoints.len().to_string(),
            n.owner.clone(),
        ]);
    }
    println!("{t}");
}

pub fn sandboxes(v: &[rest::Sandbox]) {
    let mut t = table(&[
        "SANDBOX ID",
        "NAME",
        "NETNS",
        "NETWORKS",
        "ADDRESSES",
        "OWNER",
    ]);
    for s in v {
        let nets: Vec<String> = s.endpoints.iter().map(|e| e.network_name.clone()).collect();
        let addrs: Vec<String> = s
            .endpoints
            .iter()
            .flat_map(|e| e.addresses.iter().map(|a| a.to_string()))
            .collect();
        t.add_row(vec![
            short(&s.id).to_string(),
            s.name.clone(),
            s.netns_path.clone(),
            nets.join(","),
            addrs.join(","),
            s.owner.clone(),
        ]);
    }
    println!("{t}");
}

pub fn endpoints(v: &[rest::Endpoint]) {
    let mut t = table(&[
        "ENDPOINT ID",
        "NAME",
        "NETWORK",
        "SANDBOX",
        "IFNAME",
        "ADDRESSES",
        "MAC",
    ]);
    for e in v {
        let addrs: Vec<String> = e.addresses.iter().map(|a| a.to_string()).collect();
        t.add_row(vec![
            short(&e.id).to_string(),
            e.name.clone(),
            e.network_name.clone(),
            e.sandbox_id
                .as_deref()
                .map(short)
                .unwrap_or("-")
                .to_string(),
            e.ifname.clone().unwrap_or_else(|| "-".into()),
            addrs.join(","),
            e.mac.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
}

pub fn containers(v: &[rest::Container]) {
    let mut t = table(&[
        "CONTAINER ID",
        "NAME",
        "STATE",
        "PID",
        "NETWORKS",
        "ADDRESSES",
        "PORTS",
        "COMMAND",
    ]);
    for c in v {
        let (nets, addrs, ports) = match &c.sandbox {
            Some(s) => (
                s.endpoints
                    .iter()
                    .map(|e| e.network_name.clone())
                    .collect::<Vec<_>>()
                    .join(","),
                s.endpoints
                    .iter()
                    .flat_map(|e| e.addresses.iter().map(|a| a.ip().to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                s.endpoints
                    .iter()
                    .flat_map(|e| {
                        e.ports.iter().map(|p| {
                            format!(
                                "{}:{}->{}/{}",
                                p.host_ip, p.host_port, p.container_port, p.proto
                            )
                        })
                    })
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let state = match (c.state.as_str(), c.exit_code) {
            ("exited", Some(code)) => format!("exited ({code})"),
            (s, _) => s.to_string(),
        };
        t.add_row(vec![
            short(&c.id).to_string(),
            c.name.clone(),
            state,
            c.pid.map(|p| p.to_string()).unwrap_or_default(),
            nets,
            addrs,
            ports,
            c.argv.join(" "),
        ]);
    }
    println!("{t}");
}
