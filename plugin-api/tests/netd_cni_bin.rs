//! Runs the real `netd-cni` binary against a tiny fake netd (axum on a temp unix socket):
//! version conversion of results, IPAM mode, error pass-through, daemon unreachable (11),
//! STATUS (0 / 50), VERSION without a daemon, local validation without a daemon.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use plugin_api::cni::{self, Interface, Result100};
use plugin_api::rest::{CniCall, ErrorBody};
use serde_json::{json, Value};

type Calls = Arc<Mutex<Vec<CniCall>>>;

async fn fake_cni(State(calls): State<Calls>, body: Bytes) -> Response {
    let call: CniCall = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    calls.lock().unwrap().push(call.clone());
    let parsed = match cni::parse_call(&call) {
        Ok(p) => p,
        Err(e) => {
            let b = ErrorBody {
                message: e.msg,
                cni_code: Some(e.code),
            };
            return (StatusCode::BAD_REQUEST, axum::Json(b)).into_response();
        }
    };
    match call.container_id.as_deref() {
        Some("fail") => {
            let b = ErrorBody {
                message: "no free address in 10.88.0.0/30".into(),
                cni_code: Some(7),
            };
            return (StatusCode::CONFLICT, axum::Json(b)).into_response();
        }
        Some("nocode") => {
            let b = ErrorBody {
                message: "disk on fire".into(),
                cni_code: None,
            };
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(b)).into_response();
        }
        Some("garbage") => return (StatusCode::OK, "not json").into_response(),
        Some("text") => return (StatusCode::BAD_GATEWAY, "upstream broke").into_response(),
        _ => {}
    }
    if call.command != "ADD" {
        return axum::Json(json!({})).into_response();
    }
    let netns = call.netns.clone().unwrap_or_default();
    let ifname = call.ifname.clone().unwrap_or_default();
    let r = if parsed.ipam_mode {
        Result100::new()
            .ip(
                "10.77.0.2/24".parse().unwrap(),
                Some("10.77.0.1".parse().unwrap()),
                None,
            )
            .route("0.0.0.0/0".parse().unwrap(), None)
    } else {
        let mut eth = Interface::container(ifname, "02:00:0a:58:00:02", netns);
        eth.mtu = Some(1400);
        Result100::new()
            .interface(Interface::host("netd0", "02:00:0a:58:00:01"))
            .interface(eth)
            .ip(
                "10.88.0.2/16".parse().unwrap(),
                Some("10.88.0.1".parse().unwrap()),
                Some(1),
            )
            .ip("fd88::2/64".parse().unwrap(), None, Some(1))
            .route(
                "0.0.0.0/0".parse().unwrap(),
                Some("10.88.0.1".parse().unwrap()),
            )
    };
    axum::Json(r).into_response()
}

struct FakeNetd {
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    socket: PathBuf,
    calls: Calls,
}

fn fake_netd() -> FakeNetd {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("netd.sock");
    let calls: Calls = Arc::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = {
        let _g = rt.enter();
        tokio::net::UnixListener::bind(&socket).unwrap()
    };
    let app = Router::new()
        .route("/cni", post(fake_cni))
        .with_state(calls.clone());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeNetd {
        _rt: rt,
        _dir: dir,
        socket,
        calls,
    }
}

fn conf(version: &str) -> Value {
    json!({"cniVersion": version, "name": "mynet", "type": "netd-cni", "subnet": "10.88.0.0/16"})
}

/// Runs the binary with a clean environment; returns (exit code, parsed stdout or Null).
fn run(socket: &Path, command: &str, container: &str, stdin: &Value) -> (i32, Value) {
    run_env(
        &[("NETD_HOST", &format!("unix://{}", socket.display()))],
        command,
        container,
        stdin,
    )
}

fn run_env(extra: &[(&str, &str)], command: &str, container: &str, stdin: &Value) -> (i32, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netd-cni"))
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", "/var/run/netns/cni-test")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/opt/cni/bin")
        .env("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web")
        .envs(extra.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let v = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (out.status.code().unwrap(), v)
}

#[test]
fn add_result_is_converted_to_the_requested_version() {
    let netd = fake_netd();
    for v in cni::SUPPORTED_VERSIONS {
        let (code, out) = run(&netd.socket, "ADD", "ctr1", &conf(v));
        assert_eq!(code, 0, "{v}: {out}");
        assert_eq!(out["cniVersion"], v);
        assert_eq!(out["interfaces"][1]["sandbox"], "/var/run/netns/cni-test");
        assert_eq!(out["ips"][0]["address"], "10.88.0.2/16");
        assert_eq!(out["ips"][0]["interface"], 1);
        let old = matches!(v, "0.3.0" | "0.3.1" | "0.4.0");
        assert_eq!(out["ips"][0].get("version").is_some(), old, "{v}");
        if old {
            assert_eq!(out["ips"][1]["version"], "6");
        }
        assert_eq!(
            out["interfaces"][1].get("mtu").is_some(),
            v == "1.1.0",
            "{v}"
        );
    }
    let calls = netd.calls.lock().unwrap();
    assert_eq!(calls.len(), 5);
    let c = &calls[0];
    assert_eq!(c.command, "ADD");
    assert_eq!(c.container_id.as_deref(), Some("ctr1"));
    assert_eq!(c.ifname.as_deref(), Some("eth0"));
    assert_eq!(c.netns.as_deref(), Some("/var/run/netns/cni-test"));
    assert_eq!(c.args.as_deref(), Some("IgnoreUnknown=1;K8S_POD_NAME=web"));
    assert_eq!(c.path.as_deref(), Some("/opt/cni/bin"));
    assert_eq!(c.config, conf("0.3.0"));
}

#[test]
fn ipam_mode_result_has_no_interfaces() {
    let netd = fake_netd();
    let cfg = json!({"cniVersion": "0.4.0", "name": "podnet", "type": "bridge", "bridge": "cni0",
                     "ipam": {"type": "netd-cni", "subnet": "10.77.0.0/24"}});
    let (code, out) = run(&netd.socket, "ADD", "ctr2", &cfg);
    assert_eq!(code, 0, "{out}");
    assert!(out.get("interfaces").is_none(), "{out}");
    assert_eq!(
        out["ips"],
        json!([{"address": "10.77.0.2/24", "gateway": "10.77.0.1", "version": "4"}])
    );
    assert_eq!(out["routes"], json!([{"dst": "0.0.0.0/0"}]));
}

#[test]
fn del_check_gc_status_print_nothing() {
    let netd = fake_netd();
    assert_eq!(
        run(&netd.socket, "DEL", "unknown-ctr", &conf("1.0.0")),
        (0, Value::Null)
    );
    assert_eq!(
        run(&netd.socket, "CHECK", "ctr1", &conf("1.0.0")),
        (0, Value::Null)
    );
    let mut gc = conf("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "ctr1", "ifname": "eth0"}]);
    assert_eq!(run(&netd.socket, "GC", "", &gc), (0, Value::Null));
    assert_eq!(
        run(&netd.socket, "STATUS", "", &conf("1.1.0")),
        (0, Value::Null)
    );
    let cmds: Vec<String> = netd
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.command.clone())
        .collect();
    assert_eq!(cmds, ["DEL", "CHECK", "GC", "STATUS"]);
}

#[test]
fn daemon_errors_pass_through() {
    let netd = fake_netd();
    let (code, out) = run(&netd.socket, "ADD", "fail", &conf("0.4.0"));
    assert_eq!(code, 1);
    assert_eq!(
        out,
        json!({"cniVersion": "0.4.0", "code": 7, "msg": "no free address in 10.88.0.0/30"})
    );
    let (code, out) = run(&netd.socket, "ADD", "nocode", &conf("1.0.0"));
    assert_eq!(
        (code, out["code"].as_u64(), out["msg"].as_str()),
        (1, Some(999), Some("disk on fire"))
    );
    let (code, out) = run(&netd.socket, "ADD", "garbage", &conf("1.0.0"));
    assert_eq!((code, out["code"].as_u64()), (1, Some(999)));
    let (code, out) = run(&netd.socket, "ADD", "text", &conf("1.0.0"));
    assert_eq!((code, out["code"].as_u64()), (1, Some(999)));
    assert_eq!(out["details"], "upstream broke");
}

#[test]
fn daemon_unreachable_is_code_11_and_status_50() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody-home.sock");
    let (code, out) = run(&missing, "ADD", "ctr1", &conf("1.0.0"));
    assert_eq!(code, 1);
    assert_eq!(out["code"], 11);
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .contains(missing.to_str().unwrap()),
        "{out}"
    );
    assert_eq!(out["cniVersion"], "1.0.0");
    let (code, out) = run(&missing, "DEL", "ctr1", &conf("1.0.0"));
    assert_eq!((code, out["code"].as_u64()), (1, Some(11)));
    let (code, out) = run(&missing, "STATUS", "", &conf("1.1.0"));
    assert_eq!((code, out["code"].as_u64()), (1, Some(50)));
}

#[test]
fn version_and_local_validation_need_no_daemon() {
    let nowhere = Path::new("/nonexistent/netd.sock");
    let (code, out) = run(nowhere, "VERSION", "", &json!({"cniVersion": "1.0.0"}));
    assert_eq!(code, 0);
    assert_eq!(
        out,
        json!({"cniVersion": "1.1.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
    let (code, out) = run(nowhere, "ADD", "bad id!", &conf("1.0.0"));
    assert_eq!((code, out["code"].as_u64()), (1, Some(4)));
    let (code, out) = run(nowhere, "ADD", "ctr", &conf("0.2.0"));
    assert_eq!((code, out["code"].as_u64()), (1, Some(1)));
    assert_eq!(
        out["cniVersion"], "1.1.0",
        "unsupported request version falls back to ours"
    );
    let (_, out) = run(
        nowhere,
        "ADD",
        "ctr",
        &json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "subnet": "x"}),
    );
    assert_eq!(out["code"], 7);
    let (_, out) = run_env(
        &[("NETD_HOST", "tcp://127.0.0.1:1")],
        "ADD",
        "ctr",
        &conf("1.0.0"),
    );
    assert_eq!(out["code"], 4);
    let (_, out) = run_env(&[], "BOGUS", "ctr", &conf("1.0.0"));
    assert_eq!(out["code"], 4);
}

#[test]
fn config_socket_overrides_netd_host() {
    let netd = fake_netd();
    let mut c = conf("1.0.0");
    c["socket"] = json!(netd.socket.to_str().unwrap());
    let (code, out) = run_env(&[("NETD_HOST", "/nonexistent.sock")], "ADD", "ctr1", &c);
    assert_eq!(code, 0, "{out}");
    assert_eq!(netd.calls.lock().unwrap().len(), 1);
}

#[test]
fn malformed_stdin_is_code_6() {
    let nowhere = Path::new("/nonexistent/netd.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netd-cni"))
        .env_clear()
        .env("CNI_COMMAND", "ADD")
        .env("NETD_HOST", nowhere)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"cniVersion\": ")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["code"], 6);
}
