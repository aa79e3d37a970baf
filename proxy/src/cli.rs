//! docker-proxy's command line and start-up protocol, for the `netd-proxy` binary, so
//! dockerd can run it as its `userland-proxy-path`.
//!
//! Flags are Go `flag` package style (one or two dashes, `-flag=value` or `-flag value`,
//! bool flags only as `-flag` or `-flag=bool`, parsing stops at the first non-flag or
//! `--`), which clap cannot express, hence this small parser.
//!
//! Start-up protocol: fd 3 is a pipe to the daemon; write `0\n` once listening, or
//! `1\n<error>` and exit 1. With `-use-listen-fd` the listening socket is inherited as
//! fd 4 instead of being bound here.

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::config::Proto;

/// File descriptor of the status pipe.
pub const STATUS_FD: RawFd = 3;
/// File descriptor of the inherited listening socket (`-use-listen-fd`).
pub const LISTEN_FD: RawFd = 4;

/// docker-proxy's flags, as parsed (values are checked by [`DockerProxyArgs::proto`],
/// [`DockerProxyArgs::listen`] and [`DockerProxyArgs::target`], whose errors go to the
/// status pipe as docker-proxy's do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerProxyArgs {
    /// `-proto` (default `tcp`).
    pub proto: String,
    /// `-host-ip` (default `0.0.0.0`).
    pub host_ip: IpAddr,
    /// `-host-port` (default -1).
    pub host_port: i64,
    /// `-container-ip` (default `0.0.0.0`).
    pub container_ip: IpAddr,
    /// `-container-port` (default -1).
    pub container_port: i64,
    /// `-use-listen-fd`: the listener is fd 4.
    pub use_listen_fd: bool,
    /// `-v` / `-version`.
    pub version: bool,
    /// `-h` / `-help`.
    pub help: bool,
    /// Arguments after the flags (ignored, as by docker-proxy).
    pub rest: Vec<String>,
}

impl Default for DockerProxyArgs {
    fn default() -> Self {
        DockerProxyArgs {
            proto: "tcp".into(),
            host_ip: Ipv4Addr::UNSPECIFIED.into(),
            host_port: -1,
            container_ip: Ipv4Addr::UNSPECIFIED.into(),
            container_port: -1,
            use_listen_fd: false,
            version: false,
            help: false,
            rest: Vec::new(),
        }
    }
}

/// A malformed command line (Go's `flag` would print usage and exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// `flag provided but not defined`.
    #[error("flag provided but not defined: -{0}")]
    Unknown(String),
    /// A value flag at the end of the line.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// `---x`, `-=x` and similar.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// A value that does not parse.
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    InvalidValue {
        /// Flag name.
        flag: String,
        /// Value given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// Flag values that parse but cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Anything but tcp/udp (sctp included: not relayed by netd).
    #[error("unsupported protocol {0}")]
    UnsupportedProto(String),
    /// Port outside 0..=65535 (or 0 for the container).
    #[error("invalid port {value} for -{flag}")]
    Port {
        /// Flag name.
        flag: &'static str,
        /// Value given.
        value: i64,
    },
}

/// Usage text printed for `-h` and parse errors.
pub fn usage() -> &'static str {
    "Usage of netd-proxy (docker-proxy compatible):\n  \
     -container-ip value\n    \tcontainer ip (default 0.0.0.0)\n  \
     -container-port int\n    \tcontainer port (default -1)\n  \
     -host-ip value\n    \thost ip (default 0.0.0.0)\n  \
     -host-port int\n    \thost port (default -1)\n  \
     -proto string\n    \tproxy protocol: tcp or udp (default \"tcp\")\n  \
     -use-listen-fd\n    \tuse a supplied listen fd (fd 4)\n  \
     -v, -version\n    \tprint version information and quit\n"
}

/// Parse arguments (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<DockerProxyArgs, ParseError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut out = DockerProxyArgs::default();
    let mut it = args.into_iter().map(Into::into);
    while let Some(arg) = it.next() {
        if arg == "--" {
            break;
        }
        if arg.len() < 2 || !arg.starts_with('-') {
            out.rest.push(arg);
            break;
        }
        let body = arg.strip_prefix("--").unwrap_or(&arg[1..]);
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(ParseError::BadSyntax(arg));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        match name.as_str() {
            "use-listen-fd" => out.use_listen_fd = parse_bool(&name, inline)?,
            "v" | "version" => out.version = parse_bool(&name, inline)?,
            "h" | "help" => out.help = true,
            "proto" | "host-ip" | "host-port" | "container-ip" | "container-port" => {
                let value = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| ParseError::MissingValue(name.clone()))?,
                };
                set_value(&mut out, &name, value)?;
            }
            _ => return Err(ParseError::Unknown(name)),
        }
    }
    out.rest.extend(it);
    Ok(out)
}

fn parse_bool(flag: &str, v: Option<String>) -> Result<bool, ParseError> {
    let Some(v) = v else { return Ok(true) };
    match v.as_str() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(flag, &v, "parse error")),
    }
}

fn invalid(flag: &str, value: &str, reason: &str) -> ParseError {
    ParseError::InvalidValue {
        flag: flag.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn set_value(out: &mut DockerProxyArgs, name: &str, value: String) -> Result<(), ParseError> {
    match name {
        "proto" => out.proto = value,
        "host-ip" => out.host_ip = parse_ip(name, &value)?,
        "container-ip" => out.container_ip = parse_ip(name, &value)?,
        "host-port" => out.host_port = parse_int(name, &value)?,
        "container-port" => out.container_port = parse_int(name, &value)?,
        _ => unreachable!("set_value called for {name}"),
    }
    Ok(())
}

fn parse_ip(flag: &str, v: &str) -> Result<IpAddr, ParseError> {
    if v.is_empty() {
        // Go's net.IP.UnmarshalText accepts "" as "no address" = all addresses.
        return Ok(Ipv4Addr::UNSPECIFIED.into());
    }
    v.parse()
        .map_err(|_| invalid(flag, v, &format!("invalid IP address: {v}")))
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, 0x/0o/0b/0 prefixes, underscores.
fn parse_int(flag: &str, v: &str) -> Result<i64, ParseError> {
    let err = || invalid(flag, v, "parse error");
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b.to_string())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    let body: String = if radix == 10 && body.contains('_') {
        return Err(err());
    } else {
        body.replace('_', "")
    };
    if body.is_empty() {
        return Err(err());
    }
    let n = i64::from_str_radix(&body, radix).map_err(|_| err())?;
    Ok(if neg { -n } else { n })
}

impl DockerProxyArgs {
    /// The protocol, if netd relays it.
    pub fn proto(&self) -> Result<Proto, SpecError> {
        match self.proto.as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(SpecError::UnsupportedProto(other.into())),
        }
    }

    /// `host-ip:host-port` (port 0 = ephemeral, as with Go's net.Listen).
    pub fn listen(&self) -> Result<SocketAddr, SpecError> {
        Ok(SocketAddr::new(
            self.host_ip,
            port("host-port", self.host_port, true)?,
        ))
    }

    /// `container-ip:container-port`.
    pub fn target(&self) -> Result<SocketAddr, SpecError> {
        Ok(SocketAddr::new(
            self.container_ip,
            port("container-port", self.container_port, false)?,
        ))
    }
}

fn port(flag: &'static str, value: i64, zero_ok: bool) -> Result<u16, SpecError> {
    match u16::try_from(value) {
        Ok(0) if !zero_ok => Err(SpecError::Port { flag, value }),
        Ok(p) => Ok(p),
        Err(_) => Err(SpecError::Port { flag, value }),
    }
}

/// The write end of the daemon's status pipe (fd 3), if one was inherited.
#[derive(Debug)]
pub struct StatusPipe(Option<File>);

impl StatusPipe {
    /// Take fd 3 if it is open. Call this before anything else opens files (the tokio
    /// runtime, logging): otherwise fd 3 may be one of ours rather than the daemon's.
    pub fn inherit() -> Self {
        if !fd_is_open(STATUS_FD) {
            return StatusPipe(None);
        }
        set_cloexec(STATUS_FD);
        // SAFETY: fd 3 is open and nothing else in this process owns it (see above).
        StatusPipe(Some(unsafe { File::from_raw_fd(STATUS_FD) }))
    }

    /// Wrap any writer end (tests).
    pub fn from_file(f: File) -> Self {
        StatusPipe(Some(f))
    }

    /// Whether a pipe was inherited.
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    /// Report success (`0\n`) and close the pipe.
    pub fn ready(self) {
        self.send(&ready_message());
    }

    /// Report failure (`1\n<msg>`) and close the pipe.
    pub fn fail(self, msg: &str) {
        self.send(&failure_message(msg));
    }

    fn send(self, bytes: &[u8]) {
        if let Some(mut f) = self.0 {
            // The daemon may have given up waiting; nothing useful to do on error.
            let _ = f.write_all(bytes);
        }
    }
}

/// The success message on the status pipe.
pub fn ready_message() -> Vec<u8> {
    b"0\n".to_vec()
}

/// The failure message on the status pipe.
pub fn failure_message(msg: &str) -> Vec<u8> {
    format!("1\n{msg}").into_bytes()
}

/// Take the inherited listening socket (fd 4) for `-use-listen-fd`.
pub fn inherit_listen_fd() -> Option<OwnedFd> {
    if !fd_is_open(LISTEN_FD) {
        return None;
    }
    set_cloexec(LISTEN_FD);
    // SAFETY: fd 4 is open and, with -use-listen-fd, belongs to us by protocol.
    Some(unsafe { OwnedFd::from_raw_fd(LISTEN_FD) })
}

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

fn set_cloexec(fd: RawFd) {
    // SAFETY: fcntl on an fd we checked is open.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<DockerProxyArgs, ParseError> {
        parse_args(args.iter().copied())
    }

    #[test]
    fn dockerd_20_10_command_line() {
        let a = p(&[
            "-proto",
            "tcp",
            "-host-ip",
            "0.0.0.0",
            "-host-port",
            "8080",
            "-container-ip",
            "172.17.0.2",
            "-container-port",
            "80",
        ])
        .unwrap();
        assert_eq!(a.proto().unwrap(), Proto::Tcp);
        assert_eq!(a.listen().unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(a.target().unwrap(), "172.17.0.2:80".parse().unwrap());
        assert!(!a.use_listen_fd);
    }

    #[test]
    fn equals_double_dash_and_bool_forms() {
        let a = p(&[
            "--proto=udp",
            "-host-ip=::",
            "-host-port=53",
            "-container-ip",
            "fd00::2",
            "--container-port=5353",
            "-use-listen-fd",
        ])
        .unwrap();
        assert_eq!(a.proto().unwrap(), Proto::Udp);
        assert_eq!(a.listen().unwrap(), "[::]:53".parse().unwrap());
        assert_eq!(a.target().unwrap(), "[fd00::2]:5353".parse().unwrap());
        assert!(a.use_listen_fd);
        assert!(!p(&["-use-listen-fd=false"]).unwrap().use_listen_fd);
        assert!(p(&["-use-listen-fd=yes"]).is_err());
    }

    #[test]
    fn bool_flag_does_not_take_next_arg() {
        // As in Go: "-use-listen-fd true" sets the flag and stops at "true".
        let a = p(&["-use-listen-fd", "true", "-host-port", "1"]).unwrap();
        assert!(a.use_listen_fd);
        assert_eq!(a.host_port, -1);
        assert_eq!(a.rest, vec!["true", "-host-port", "1"]);
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["-bogus"]), Err(ParseError::Unknown("bogus".into())));
        assert_eq!(
            p(&["-host-port"]),
            Err(ParseError::MissingValue("host-port".into()))
        );
        assert!(matches!(p(&["---x"]), Err(ParseError::BadSyntax(_))));
        assert!(matches!(
            p(&["-host-port", "http"]),
            Err(ParseError::InvalidValue { .. })
        ));
        assert!(matches!(
            p(&["-host-ip", "300.1.1.1"]),
            Err(ParseError::InvalidValue { .. })
        ));
    }

    #[test]
    fn values_checked_later_like_docker_proxy() {
        let a = p(&[
            "-proto",
            "sctp",
            "-host-port",
            "70000",
            "-container-port",
            "0",
        ])
        .unwrap();
        assert_eq!(a.proto(), Err(SpecError::UnsupportedProto("sctp".into())));
        assert!(a.listen().is_err());
        assert!(a.target().is_err());
        // Defaults are docker-proxy's: port -1 is invalid until given.
        assert!(p(&[]).unwrap().listen().is_err());
    }

    #[test]
    fn go_integer_syntax() {
        assert_eq!(p(&["-host-port", "0x50"]).unwrap().host_port, 80);
        assert_eq!(p(&["-host-port", "010"]).unwrap().host_port, 8);
        assert_eq!(p(&["-host-port", "-1"]).unwrap().host_port, -1);
    }

    #[test]
    fn status_messages() {
        assert_eq!(ready_message(), b"0\n");
        assert_eq!(failure_message("boom"), b"1\nboom");
    }
}
