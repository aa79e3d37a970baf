//! Root: teardown leaves nothing behind, the rule count is fixed, and the
//! DOCKER-USER coexistence rules come and go with netd's networks.

mod common;

use common::*;
use drivers::sys::{Ns, Sys};
use drivers::{sandbox, Driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_leaves_nothing_and_rules_do_not_grow() {
    require_root!();
    let t = TestHost::new("clean").await;
    let base_rules = t.rule_count().await;
    assert_eq!(base_rules, drivers::bridge::rules::fixed_rule_count());
    let empty = t.set_elements().await;
    assert!(empty.values().all(|n| *n == 0), "{empty:?}");
    let links_before = t.host_links().await;

    let mut nets = Vec::new();
    let mut attached = Vec::new();
    for i in 0..3u8 {
        let mut n = network(
            &format!("cl{i}"),
            &brname(&format!("nc{i}")),
            &format!("10.50.{i}.0/24"),
            Some(&format!("fd00:50:{i}::/64")),
        );
        if i == 1 {
            n.internal = true;
        }
        if i == 2 {
            n.options
                .insert("com.docker.network.bridge.enable_icc".into(), "0".into());
        }
        t.driver.create_network(&n).await.unwrap();
        // Idempotent create.
        t.driver.create_network(&n).await.unwrap();
        for j in 0..3u8 {
            let sb = t.netns(&format!("sb{i}{j}")).await;
            let ep = attach(
                &t,
                &n,
                &format!("e{i}{j}"),
                &[
                    &format!("10.50.{i}.{}/24", j + 2),
                    &format!("fd00:50:{i}::{}/64", j + 2),
                ],
                &sb,
                "eth0",
                true,
            )
            .await;
            attached.push((n.clone(), ep, sb));
        }
        assert_eq!(
            t.rule_count().await,
            base_rules,
            "rules must not grow with networks/endpoints"
        );
        nets.push(n);
    }
    let full = t.set_elements().await;
    assert_eq!(full["bridges"], 3);
    assert_eq!(full["same_bridge"], 3);
    assert_eq!(full["internal"], 1);
    assert_eq!(full["icc_off"], 1);
    assert_eq!(full["internal_gw4"], 1);
    assert_eq!(full["internal_gw6"], 1);
    assert_eq!(full["masq4"], 2);
    assert_eq!(full["masq6"], 2);
    assert_eq!(t.host_links().await.len(), links_before.len() + 3 + 9);

    // Disconnect: remove the sandbox interface, leave, delete the endpoint,
    // delete the namespace. Each step is idempotent.
    for (n, ep, sb) in &attached {
        let sbs = drivers::SandboxSpec {
            id: "x".into(),
            netns_path: sb.display().to_string(),
        };
        sandbox::remove_interface(t.sys.as_ref(), sb, "eth0")
            .await
            .unwrap();
        sandbox::remove_interface(t.sys.as_ref(), sb, "eth0")
            .await
            .unwrap();
        t.driver.leave(n, ep, &sbs).await.unwrap();
        t.driver.delete_endpoint(n, ep).await.unwrap();
        t.driver.delete_endpoint(n, ep).await.unwrap();
        drivers::sys::delete_netns(sb).unwrap();
        drivers::sys::delete_netns(sb).unwrap();
        assert!(!sb.exists());
    }
    assert_eq!(
        t.host_links().await.len(),
        links_before.len() + 3,
        "only bridges remain"
    );
    for n in &nets {
        t.driver.delete_network(n).await.unwrap();
        t.driver.delete_network(n).await.unwrap();
    }
    assert_eq!(t.host_links().await, links_before, "no veth or bridge left");
    assert_eq!(t.set_elements().await, empty, "no nft element left");
    assert_eq!(t.rule_count().await, base_rules);
    // init() again is idempotent: same rules, no duplicates.
    t.driver.init().await.unwrap();
    assert_eq!(t.rule_count().await, base_rules);
    // An endpoint whose bridge is gone is refused, not half-built.
    let err = t
        .driver
        .create_endpoint(&nets[0], &attached[0].1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(t.host_links().await, links_before);
}

fn ipt(t: &TestHost, args: &[&str]) -> String {
    let mut a = vec!["iptables-nft"];
    a.extend_from_slice(args);
    let o = t.host_cmd(&a);
    assert!(
        o.status.success(),
        "iptables-nft {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_user_coexistence() {
    require_root!();
    if std::process::Command::new("iptables-nft")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: iptables-nft not installed");
        return;
    }
    let t = TestHost::new("docker").await;
    // Without DOCKER-USER the sync does nothing.
    let rep = t
        .driver
        .docker_coexistence_sync(&["x".into()])
        .await
        .unwrap();
    assert!(rep.families.is_empty() && rep.inserted.is_empty());

    // What dockerd sets up (iptables-nft): FORWARD policy DROP and a
    // DOCKER-USER chain with a RETURN, plus a user rule of its own.
    ipt(&t, &["-N", "DOCKER-USER"]);
    ipt(
        &t,
        &[
            "-A",
            "DOCKER-USER",
            "-s",
            "203.0.113.0/24",
            "-m",
            "comment",
            "--comment",
            "user",
            "-j",
            "DROP",
        ],
    );
    ipt(&t, &["-A", "DOCKER-USER", "-j", "RETURN"]);
    ipt(&t, &["-A", "FORWARD", "-j", "DOCKER-USER"]);
    ipt(&t, &["-P", "FORWARD", "DROP"]);

    let br = brname("ndd");
    let n = network("dck", &br, "10.60.0.0/24", None);
    t.driver.create_network(&n).await.unwrap();
    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    attach(&t, &n, "d1", &["10.60.0.2/24"], &s1, "eth0", true).await;
    attach(&t, &n, "d2", &["10.60.0.3/24"], &s2, "eth0", true).await;

    // iptables still understands the chain (dockerd keeps working), and it
    // now starts with our two rules.
    let rules = ipt(&t, &["-S", "DOCKER-USER"]);
    let ours: Vec<_> = rules
        .lines()
        .filter(|l| l.contains(&format!("{}:{br}", t.table)))
        .collect();
    assert_eq!(ours.len(), 2, "{rules}");
    assert!(
        rules.lines().nth(1).unwrap().contains(&br),
        "inserted first: {rules}"
    );
    assert!(rules.contains("--comment user"), "user rule kept: {rules}");

    // Bridged traffic passes Docker's DROP policy (br_netfilter is on here).
    let e2 = echo_server(&s2, ip("0.0.0.0"));
    assert!(
        tcp_ok(&s1, ip("10.60.0.3"), e2.port),
        "s1 -> s2 beside Docker"
    );
    // So does traffic to the outside through the host (forwarded, NATed).
    let out = t.netns("outside").await;
    let (ho, oo) = (brname("ho"), brname("oo"));
    let h = Ns::Host;
    t.sys.create_veth(&h, &ho, &oo, None).await.unwrap();
    t.sys
        .add_addr(&h, &ho, "192.168.251.1/30".parse().unwrap())
        .await
        .unwrap();
    t.sys.set_up(&h, &ho, true).await.unwrap();
    sandbox::add_interface(
        t.sys.as_ref(),
        &out,
        &oo,
        "eth0",
        None,
        &["192.168.251.2/30".parse().unwrap()],
    )
    .await
    .unwrap();
    let eo = echo_server(&out, ip("0.0.0.0"));
    assert!(
        tcp_ok(&s1, ip("192.168.251.2"), eo.port),
        "s1 -> outside beside Docker"
    );

    // A periodic sync with nothing changed does nothing; a lost rule is
    // restored.
    let rep = t
        .driver
        .docker_coexistence_sync(std::slice::from_ref(&br))
        .await
        .unwrap();
    assert_eq!(rep.families, vec!["ip".to_string()]);
    assert!(rep.inserted.is_empty() && rep.deleted_rules == 0, "{rep:?}");
    ipt(
        &t,
        &[
            "-D",
            "DOCKER-USER",
            "-i",
            &br,
            "-m",
            "comment",
            "--comment",
            &format!("{}:{br}", t.table),
            "-j",
            "ACCEPT",
        ],
    );
    let rep = t
        .driver
        .docker_coexistence_sync(std::slice::from_ref(&br))
        .await
        .unwrap();
    assert_eq!(rep.inserted, vec![format!("ip:{br}")]);
    assert_eq!(rep.deleted_rules, 1);

    // Control: without our DOCKER-USER rules, Docker's DROP policy wins.
    t.driver.docker_coexistence_sync(&[]).await.unwrap();
    assert!(
        !tcp_ok(&s1, ip("10.60.0.3"), e2.port),
        "Docker's FORWARD DROP without our rules"
    );
    t.driver
        .docker_coexistence_sync(std::slice::from_ref(&br))
        .await
        .unwrap();
    assert!(tcp_ok(&s1, ip("10.60.0.3"), e2.port), "restored");

    // Deleting the network removes exactly our rules.
    t.driver.delete_network(&n).await.unwrap();
    let rules = ipt(&t, &["-S", "DOCKER-USER"]);
    assert!(!rules.contains(&br), "{rules}");
    assert!(
        rules.contains("--comment user") && rules.contains("-j RETURN"),
        "{rules}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_create_delete_and_adopt() {
    require_root!();
    let t = TestHost::new("netns").await;
    let p = t.netns("a").await;
    // lo is up inside; nothing else.
    let links = t.sys.list_links(&Ns::path(&p)).await.unwrap();
    assert_eq!(links.len(), 1);
    assert!(links[0].up && links[0].name == "lo");
    // Creating over an existing path fails, deleting twice is fine.
    assert!(drivers::sys::create_netns(&p).await.is_err());
    drivers::sys::delete_netns(&p).unwrap();
    drivers::sys::delete_netns(&p).unwrap();
    assert!(!p.exists());
    // Adopting: any namespace file works, e.g. /proc/PID/ns/net of a thread
    // that lives in the namespace (here: a sleeping child process).
    let q = t.netns("b").await;
    let mut child = std::process::Command::new("nsenter")
        .arg(format!("--net={}", q.display()))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let proc_path = std::path::PathBuf::from(format!("/proc/{}/ns/net", child.id()));
    let st = sandbox::inspect(t.sys.as_ref(), &proc_path).await.unwrap();
    assert_eq!(st.interfaces.len(), 1);
    assert_eq!(
        sandbox::next_ifname(t.sys.as_ref(), &proc_path, "eth")
            .await
            .unwrap(),
        "eth0"
    );
    let _ = child.kill();
    let _ = child.wait();

    // nft inside a sandbox namespace: the table exists there only.
    let ns = Ns::path(&q);
    t.sys
        .nft_apply_text(&ns, &drivers::bridge::ports::maps_script("sbx"))
        .await
        .unwrap();
    t.sys
        .nft_apply(&ns, &drivers::bridge::rules::base_ruleset("sbx", true))
        .await
        .unwrap();
    assert!(t
        .sys
        .nft_list(&ns, &["list", "table", "inet", "sbx"])
        .await
        .unwrap()
        .is_some());
    assert!(t
        .sys
        .nft_list(&Ns::Host, &["list", "table", "inet", "sbx"])
        .await
        .unwrap()
        .is_none());
    // nft's own error text comes back in the error.
    let bad: nftables::schema::Nftables = serde_json::from_value(serde_json::json!({"nftables": [
        {"add": {"element": {"family": "inet", "table": "sbx", "name": "nosuchset", "elem": ["x"]}}}
    ]}))
    .unwrap();
    let err = t.sys.nft_apply(&ns, &bad).await.unwrap_err().to_string();
    assert!(err.contains("No such file or directory"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_dir_is_a_shared_mount() {
    require_root!();
    let dir = std::env::temp_dir().join(format!("netd-drv-nsdir-{}", std::process::id()));
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = drivers::sys::delete_netns(&self.0.join("n1"));
            while nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH).is_ok() {}
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _g = Unmount(dir.clone());
    drivers::sys::ensure_netns_dir(&dir).unwrap();
    drivers::sys::ensure_netns_dir(&dir).unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
        .expect("dir is a mount point");
    assert!(line.contains("shared:"), "{line}");
    drivers::sys::create_netns(&dir.join("n1")).await.unwrap();
    drivers::sys::delete_netns(&dir.join("n1")).unwrap();
}
