//! Running the `nft` binary. The `nftables` crate gives us the JSON types;
//! we spawn `nft -j -f -` ourselves because the crate's helpers do not
//! capture stderr (crates.md pitfall 4), and nft's message is the only useful
//! part of an error. Inside another namespace the nft process joins it itself
//! (`setns` between fork and exec), so no thread of ours changes netns.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{SysError, SysResult};

fn command(netns: Option<&Path>) -> Command {
    let mut c = Command::new("nft");
    if let Some(p) = netns {
        // Join the namespace in the child between fork and exec (what `nsenter
        // --net` would do, without a second program to start: ~3 ms less per
        // call). Only raw syscalls run in the child; the path is prepared here.
        let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
        // SAFETY: the closure only calls async-signal-safe syscalls (open,
        // setns, close) and allocates nothing.
        unsafe {
            c.pre_exec(move || {
                let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let r = libc::setns(fd, libc::CLONE_NEWNET);
                libc::close(fd);
                if r != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    c
}

/// Apply a batch (one kernel transaction: all or nothing).
pub async fn apply(netns: Option<&Path>, batch: &nftables::schema::Nftables<'_>) -> SysResult<()> {
    let json = serde_json::to_vec(batch).map_err(|e| SysError::Nft(e.to_string()))?;
    apply_json(netns, &json).await
}

/// Apply raw JSON bytes (`{"nftables": [...]}`).
pub async fn apply_json(netns: Option<&Path>, json: &[u8]) -> SysResult<()> {
    let mut child = command(netns)
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SysError::Nft(format!("cannot run nft: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(json).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SysError::Nft(format!(
            "{} (batch: {})",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(json)
        )))
    }
}

/// Apply a script in nft's text syntax (`nft -f -`), one transaction.
pub async fn apply_text(netns: Option<&Path>, script: &str) -> SysResult<()> {
    let mut child = command(netns)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SysError::Nft(format!("cannot run nft: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(script.as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SysError::Nft(format!(
            "{} (script: {script})",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `nft -j ARGS`, stdout parsed as JSON; `None` when nft reports that the
/// object does not exist.
pub async fn list(netns: Option<&Path>, args: &[&str]) -> SysResult<Option<serde_json::Value>> {
    let out = command(netns)
        .arg("-j")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| SysError::Nft(format!("cannot run nft: {e}")))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(SysError::Nft(format!(
            "nft {}: {}",
            args.join(" "),
            stderr.trim()
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map(Some)
        .map_err(|e| SysError::Nft(format!("nft {}: bad JSON: {e}", args.join(" "))))
}

/// Start-up probe: `nft --version` runs and an empty batch applies.
pub async fn probe(netns: Option<&Path>) -> SysResult<String> {
    let out = command(netns)
        .arg("--version")
        .output()
        .await
        .map_err(|e| SysError::Nft(format!("cannot run nft: {e}")))?;
    apply_json(netns, br#"{"nftables":[]}"#).await?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
