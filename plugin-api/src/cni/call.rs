//! One CNI invocation, end to end: environment + stdin → [`CniCall`] (what `netd-cni`
//! forwards) → [`ParsedCall`] (what both `netd-cni` and the daemon act on). Both sides call
//! [`parse_call`], so a bad input gets the same precise error with or without the daemon.

use std::net::IpAddr;

use serde_json::Value;

use super::config::{Attachment, NetConf, NetdSettings};
use super::env::{validate_container_id, validate_ifname, CniArgs, Command};
use super::error::CniError;
use super::result::Result100;
use super::version::CniVersion;
use crate::rest::CniCall;

/// What the call asks for, with the environment each verb requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Add {
        container_id: String,
        ifname: String,
        netns: String,
    },
    /// `netns` may be absent or already gone: DEL is best effort.
    Del {
        container_id: String,
        ifname: String,
        netns: Option<String>,
    },
    Check {
        container_id: String,
        ifname: String,
        netns: String,
    },
    /// Release everything of this network not in `valid_attachments`.
    Gc {
        valid_attachments: Vec<Attachment>,
    },
    Status,
}

impl Op {
    pub fn command(&self) -> Command {
        match self {
            Op::Add { .. } => Command::Add,
            Op::Del { .. } => Command::Del,
            Op::Check { .. } => Command::Check,
            Op::Gc { .. } => Command::Gc,
            Op::Status => Command::Status,
        }
    }

    /// `(container_id, ifname)` for ADD/DEL/CHECK.
    pub fn attachment(&self) -> Option<(&str, &str)> {
        match self {
            Op::Add {
                container_id,
                ifname,
                ..
            }
            | Op::Del {
                container_id,
                ifname,
                ..
            }
            | Op::Check {
                container_id,
                ifname,
                ..
            } => Some((container_id, ifname)),
            Op::Gc { .. } | Op::Status => None,
        }
    }
}

/// A validated CNI call.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCall {
    pub op: Op,
    /// The request's `cniVersion`: netd-cni prints the result in this version.
    pub version: CniVersion,
    /// netd-cni runs as the IPAM plugin of another plugin (see [`crate::cni`]).
    pub ipam_mode: bool,
    pub conf: NetConf,
    pub netd: NetdSettings,
    pub args: CniArgs,
    /// `CNI_PATH`, split on `:`.
    pub cni_path: Vec<String>,
    pub prev_result: Option<Result100>,
}

impl ParsedCall {
    /// Requested addresses: `args.cni.ips`, else `runtimeConfig.ips`, else `CNI_ARGS IP=`
    /// (the conventions say `args` wins over `CNI_ARGS`).
    pub fn requested_ips(&self) -> &[IpAddr] {
        [
            &self.conf.args_ips,
            &self.conf.runtime_config.ips,
            &self.args.ips,
        ]
        .into_iter()
        .find(|l| !l.is_empty())
        .map_or(&[], |l| l.as_slice())
    }

    /// Requested MAC, same precedence as [`Self::requested_ips`].
    pub fn requested_mac(&self) -> Option<&str> {
        self.conf
            .args_mac
            .as_deref()
            .or(self.conf.runtime_config.mac.as_deref())
            .or(self.args.mac.as_deref())
    }
}

fn required(call_field: &Option<String>, var: &str, cmd: Command) -> Result<String, CniError> {
    match call_field.as_deref() {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(CniError::invalid_env(format!(
            "{var} is required for {} but is not set",
            cmd.as_str()
        ))),
    }
}

/// Parses and validates a forwarded call. Order: verb (4), environment (4), `cniVersion`
/// (6/1), verb allowed by the version (1), configuration (7/2), `CNI_ARGS` (4),
/// `prevResult` (6). VERSION is refused (netd-cni answers it locally).
pub fn parse_call(call: &CniCall) -> Result<ParsedCall, CniError> {
    let cmd = Command::parse(&call.command)?;
    let op = match cmd {
        Command::Version => {
            return Err(CniError::invalid_env(
                "VERSION is answered by netd-cni itself and never forwarded",
            ))
        }
        Command::Add | Command::Del | Command::Check => {
            let container_id = required(&call.container_id, "CNI_CONTAINERID", cmd)?;
            validate_container_id(&container_id)?;
            let ifname = required(&call.ifname, "CNI_IFNAME", cmd)?;
            validate_ifname(&ifname)?;
            match cmd {
                Command::Add => Op::Add {
                    netns: required(&call.netns, "CNI_NETNS", cmd)?,
                    container_id,
                    ifname,
                },
                Command::Check => Op::Check {
                    netns: required(&call.netns, "CNI_NETNS", cmd)?,
                    container_id,
                    ifname,
                },
                _ => Op::Del {
                    netns: call.netns.clone().filter(|n| !n.is_empty()),
                    container_id,
                    ifname,
                },
            }
        }
        Command::Gc => Op::Gc {
            valid_attachments: Vec::new(),
        },
        Command::Status => Op::Status,
    };
    if matches!(
        cmd,
        Command::Add | Command::Del | Command::Check | Command::Gc
    ) {
        required(&call.path, "CNI_PATH", cmd)?;
    }
    let conf = NetConf::parse(&call.config)?;
    let v = conf.cni_version;
    let allowed = match cmd {
        Command::Check => v.has_check(),
        Command::Gc | Command::Status => v.has_gc_and_status(),
        _ => true,
    };
    if !allowed {
        return Err(CniError::incompatible_version(format!(
            "config version {v} does not allow {}",
            cmd.as_str()
        )));
    }
    let netd = conf.netd_settings(&call.config)?;
    let op = match op {
        Op::Gc { .. } => Op::Gc {
            valid_attachments: conf.valid_attachments.clone().ok_or_else(|| {
                CniError::invalid_config(
                    "invalid network config: GC needs `cni.dev/valid-attachments`",
                )
            })?,
        },
        other => other,
    };
    let args = CniArgs::parse(call.args.as_deref().unwrap_or(""))?;
    let prev_result = conf
        .prev_result
        .as_ref()
        .map(Result100::parse_any)
        .transpose()?;
    let cni_path = call
        .path
        .as_deref()
        .unwrap_or("")
        .split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    Ok(ParsedCall {
        ipam_mode: conf.ipam_mode(),
        version: v,
        op,
        conf,
        netd,
        args,
        cni_path,
        prev_result,
    })
}

/// Builds the [`CniCall`] from the environment (`env(name)`) and stdin. Empty stdin is `{}`
/// only for VERSION; otherwise it and non-JSON input are code 6.
pub fn call_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &[u8],
) -> Result<CniCall, CniError> {
    let command = env("CNI_COMMAND")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| CniError::invalid_env("CNI_COMMAND is not set"))?;
    let config = if stdin.iter().all(u8::is_ascii_whitespace) {
        if command != "VERSION" {
            return Err(CniError::decode("no network configuration on stdin"));
        }
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(stdin).map_err(|e| {
            CniError::decode(format!(
                "network configuration on stdin is not valid JSON: {e}"
            ))
        })?
    };
    Ok(CniCall {
        command,
        container_id: env("CNI_CONTAINERID"),
        netns: env("CNI_NETNS"),
        ifname: env("CNI_IFNAME"),
        args: env("CNI_ARGS"),
        path: env("CNI_PATH"),
        config,
    })
}
