//! CNI (spec 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0) for netd: configuration and environment
//! parsing with the spec's error codes, result types with per-version output, and the
//! `netd-cni` runner, a thin client that forwards each call to netd's `POST /cni`.
//!
//! - [`version`]: supported versions, VERSION output.
//! - [`env`]: verbs, container id / ifname / network name rules, `CNI_ARGS`.
//! - [`config`]: the stdin configuration ([`NetConf`]) and netd's own keys ([`NetdSettings`]).
//! - [`result`]: [`Result100`] (1.1.0 shape, builder), conversion to each version, `prevResult`.
//! - [`call`]: [`parse_call`], shared by `netd-cni` and the daemon.
//! - [`client`], [`runner`]: the `netd-cni` side (socket, HTTP, exit codes).
//!
//! # Error codes
//!
//! | code | when |
//! |---|---|
//! | 1 | `cniVersion` missing or not one of the five supported; CHECK below 0.4.0; GC/STATUS below 1.1.0 |
//! | 2 | a known key with a value netd does not support (`ipam.type` other than netd-cni when `type` is netd-cni, a port protocol other than tcp/udp/sctp) |
//! | 4 | `CNI_COMMAND` unset/unknown; `CNI_CONTAINERID`, `CNI_IFNAME`, `CNI_NETNS`, `CNI_PATH` missing when the verb needs them; bad container id / ifname; bad `CNI_ARGS` (malformed pair, unknown key without `IgnoreUnknown`, bad `IP`/`MAC`); bad `NETD_HOST`/`NETD_CNI_TIMEOUT` |
//! | 5 | stdin cannot be read |
//! | 6 | stdin empty or not JSON, not an object, `cniVersion` not a string or not `N.N.N`; `prevResult` undecodable |
//! | 7 | `name` missing/invalid, `type` missing, a key of the wrong type, bad subnet/gateway/mtu/bridge/network values, GC without `cni.dev/valid-attachments` |
//! | 11 | netd's socket unreachable or the exchange failed (message names the socket) |
//! | 50 | STATUS while netd is unreachable |
//! | 999 | netd answered something that is neither a result nor an `ErrorBody` with a code |
//!
//! Environment (see the spec): ADD and CHECK need `CNI_CONTAINERID`, `CNI_IFNAME`,
//! `CNI_NETNS`, `CNI_PATH`; DEL the same but `CNI_NETNS` is optional; GC needs `CNI_PATH`;
//! STATUS needs nothing; VERSION is answered locally and ignores stdin.
//!
//! # Interface mode and IPAM mode
//!
//! The rule, in [`config::is_ipam_mode`]: netd-cni acts as an **IPAM plugin** exactly when
//! `config.type != "netd-cni"` and `config.ipam.type == "netd-cni"` (another plugin, e.g. the
//! reference `bridge`, executes it as its IPAM). Otherwise `config.type` must be `"netd-cni"`
//! (interface mode: netd creates the interface) — anything else is code 7. The forwarded
//! [`CniCall`](crate::rest::CniCall) is the same in both modes (command stays ADD/DEL/...);
//! the daemon applies the same rule, most simply by calling [`parse_call`] and reading
//! [`ParsedCall::ipam_mode`].
//!
//! netd's keys ([`NetdSettings`]): `network` (netd network name, default `name`), `driver`,
//! `subnet`, `gateway`, `subnet6`, `gateway6`, `ipv6`, `internal`, `socket`, `options`
//! (string map) and, in interface mode only, `bridge`, `ipMasq`, `isGateway`, `mtu`. In
//! interface mode they are top-level keys; in IPAM mode they are read from the `ipam` object
//! (`socket` falls back to the top level).
//!
//! # Daemon contract for `POST /cni`
//!
//! Body: [`CniCall`](crate::rest::CniCall) (env + stdin config, untouched). The daemon should
//! run [`parse_call`] and answer:
//!
//! | command | success (HTTP 200) | notes |
//! |---|---|---|
//! | ADD | a [`Result100`] as JSON (1.1.0 form; netd-cni converts it to the request's version) | interface mode: `interfaces` (container-side interface with `sandbox` = netns, host-side ones without), `ips[].interface` pointing at the container interface, `routes`, `dns`. IPAM mode: only `ips` (no `interface` index), `routes`, `dns`. An existing `(container, ifname)` is an error. |
//! | DEL | `{}` | must also be 200 when the container, netns, or state is unknown (idempotent) |
//! | CHECK | `{}` | error if state diverges from `prevResult` |
//! | GC | `{}` | release attachments of the network not in the valid list; keep going on errors |
//! | STATUS | `{}` | or an error with `cni_code` 50/51 |
//!
//! Failures: any non-200 status with [`ErrorBody`](crate::rest::ErrorBody)
//! `{message, cni_code}`; netd-cni prints `{"cniVersion", "code": cni_code (999 if absent),
//! "msg": message}` and exits 1.

pub mod call;
pub mod client;
pub mod config;
pub mod env;
pub mod error;
pub mod result;
pub mod runner;
pub mod version;

pub use call::{call_from_env, parse_call, Op, ParsedCall};
pub use config::{
    is_ipam_mode, Attachment, NetConf, NetdSettings, PortMapping, RuntimeConfig, RuntimeDns,
    PLUGIN_TYPE,
};
pub use env::{CniArgs, Command};
pub use error::CniError;
pub use result::{Dns, Interface, IpConfig, Result100, Route};
pub use version::{version_output, CniVersion, SUPPORTED_VERSIONS};
