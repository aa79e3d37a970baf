//! The netlink nf_tables batch writer against the real kernel, in a namespace of the
//! test's own: the table, chain and DNAT rules it loads are the ones `nft` shows, they
//! redirect real traffic, a re-load replaces them, and a bad batch fails whole.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use drivers::sys::netns::run_in_netns_blocking;
use drivers::sys::nfnl::{Batch, Expr, HOOK_OUTPUT, NFPROTO_IPV4};

fn dnat_batch(table: &str, to_port: u16, replace: bool) -> Batch {
    let a = Ipv4Addr::new(127, 0, 0, 11);
    let mut b = Batch::new(NFPROTO_IPV4);
    if replace {
        b.add_table(table).delete_table(table).add_table(table);
    } else {
        b.create_table(table);
    }
    b.add_base_chain(table, "output", "nat", HOOK_OUTPUT, -100);
    let mut rule = Expr::ip_daddr_eq(a).to_vec();
    rule.extend(Expr::l4_dport_eq(17, 53));
    rule.extend(Expr::dnat4(a, to_port));
    b.add_rule(table, "output", &rule);
    b
}

fn nft_list(ns: &std::path::Path, table: &str) -> String {
    let o = std::process::Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["nft", "list", "table", "ip", table])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Send one datagram to 127.0.0.11:53 inside the namespace and see whether the
/// listener on `port` receives it.
fn reaches(ns: &std::path::Path, port: u16) -> bool {
    run_in_netns_blocking(ns, move || {
        let srv = UdpSocket::bind(("127.0.0.11", port)).unwrap();
        srv.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let cli = UdpSocket::bind("127.0.0.1:0").unwrap();
        cli.send_to(b"ping", "127.0.0.11:53").unwrap();
        let mut buf = [0u8; 16];
        srv.recv_from(&mut buf).is_ok()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnat_rules_load_show_and_redirect() {
    require_root!();
    let t = common::TestHost::new("nfnl").await;
    let ns = t.netns("sb").await;
    // lo must be up for 127.0.0.11 (TestHost's namespaces have it up).
    let table = format!("nfnl_{}", std::process::id());

    let tb = table.clone();
    run_in_netns_blocking(&ns, move || dnat_batch(&tb, 40001, false).commit())
        .unwrap()
        .unwrap();
    let shown = nft_list(&ns, &table);
    assert!(
        (shown.contains("type nat hook output priority dstnat; policy accept;")
            || shown.contains("type nat hook output priority -100; policy accept;"))
            && shown.contains("ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001"),
        "nft shows:\n{shown}"
    );
    assert!(reaches(&ns, 40001), "DNAT to :40001 did not deliver");

    // Creating it again is refused (EEXIST) and changes nothing; the replacing batch
    // (add + delete + add in one transaction) swaps the rule.
    let tb = table.clone();
    let err = run_in_netns_blocking(&ns, move || dnat_batch(&tb, 40002, false).commit())
        .unwrap()
        .unwrap_err();
    assert!(err.is_exists(), "{err}");
    assert!(nft_list(&ns, &table).contains("dnat to 127.0.0.11:40001"));
    let tb = table.clone();
    run_in_netns_blocking(&ns, move || dnat_batch(&tb, 40002, true).commit())
        .unwrap()
        .unwrap();
    let shown = nft_list(&ns, &table);
    assert!(shown.contains("dnat to 127.0.0.11:40002"), "{shown}");
    assert!(!shown.contains("40001"), "old rule kept:\n{shown}");
    assert!(reaches(&ns, 40002));
    assert!(!reaches(&ns, 40001));

    // A batch that fails part-way (rule in a chain that does not exist) is refused
    // with the kernel's errno and changes nothing.
    let tb = table.clone();
    let err = run_in_netns_blocking(&ns, move || {
        let mut b = Batch::new(NFPROTO_IPV4);
        b.add_table(&tb).delete_table(&tb).add_table(&tb);
        b.add_rule(
            &tb,
            "no_such_chain",
            &Expr::ip_daddr_eq(Ipv4Addr::LOCALHOST),
        );
        b.commit()
    })
    .unwrap()
    .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
    let shown = nft_list(&ns, &table);
    assert!(
        shown.contains("dnat to 127.0.0.11:40002"),
        "batch not atomic:\n{shown}"
    );
}
