//! The attach socket (`<api socket>.attach`): `netctl run` (attached) and `netctl exec`
//! send one JSON request together with their stdin, stdout and stderr as SCM_RIGHTS file
//! descriptors; netd starts the process on those descriptors and answers with JSON lines
//! (`started`, then `exited` with the code, or `error`). Only root can connect (0600).

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use plugin_api::rest::{AttachEvent, AttachRequest};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};

use crate::containers::Containers;

/// Largest request accepted (argv and env of an exec).
const MAX_REQUEST: usize = 256 * 1024;

pub async fn serve(listener: UnixListener, containers: Arc<Containers>) {
    loop {
        let (s, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "attach accept");
                continue;
            }
        };
        let c = containers.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(s, c).await {
                tracing::debug!(error = %e, "attach connection");
            }
        });
    }
}

/// Receive the request bytes and up to three fds.
async fn receive(s: &UnixStream) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut data = vec![0u8; MAX_REQUEST];
    loop {
        s.readable().await?;
        let r = s.try_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(&mut data)];
            let mut cmsg = nix::cmsg_space!([RawFd; 3]);
            let msg = recvmsg::<()>(
                s.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            let mut fds = vec![];
            for c in msg.cmsgs().map_err(std::io::Error::from)? {
                if let ControlMessageOwned::ScmRights(v) = c {
                    for fd in v {
                        // SAFETY: the kernel just gave us these descriptors.
                        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
            Ok((msg.bytes, fds))
        });
        match r {
            Ok((n, fds)) => {
                data.truncate(n);
                return Ok((data, fds));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn send(s: &mut UnixStream, ev: &AttachEvent) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(ev).expect("json");
    line.push(b'\n');
    s.write_all(&line).await
}

async fn handle(mut s: UnixStream, c: Arc<Containers>) -> std::io::Result<()> {
    let (data, mut fds) = receive(&s).await?;
    let fail = |m: String| AttachEvent::Error { message: m };
    let req: AttachRequest = match serde_json::from_slice(&data) {
        Ok(r) => r,
        Err(e) => return send(&mut s, &fail(format!("invalid attach request: {e}"))).await,
    };
    if fds.len() != 3 {
        return send(
            &mut s,
            &fail(format!("expected 3 file descriptors, got {}", fds.len())),
        )
        .await;
    }
    let stderr = fds.pop().expect("3");
    let stdout = fds.pop().expect("3");
    let stdin = fds.pop().expect("3");
    let stdio = runtime::Stdio::new(Some(stdin), stdout, stderr);
    match req {
        AttachRequest::Start { id } => {
            let rec = match c.find(&id).await {
                Ok(r) => r,
                Err(e) => return send(&mut s, &fail(e.message)).await,
            };
            match c.start(&rec.id, stdio).await {
                Ok(pid) => send(&mut s, &AttachEvent::Started { pid }).await?,
                Err(e) => {
                    c.discard(&rec.id).await;
                    return send(&mut s, &fail(e.message)).await;
                }
            }
            match c.wait(&rec.id).await {
                Ok(code) => send(&mut s, &AttachEvent::Exited { code }).await,
                Err(e) => send(&mut s, &fail(e.message)).await,
            }
        }
        AttachRequest::Exec { id, argv, env, cwd } => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let r = c
                .exec(&id, argv, env, cwd, stdio, move |pid| {
                    let _ = tx.send(pid);
                })
                .await;
            if let Ok(pid) = rx.await {
                send(&mut s, &AttachEvent::Started { pid }).await?;
            }
            match r {
                Ok(code) => send(&mut s, &AttachEvent::Exited { code }).await,
                Err(e) => send(&mut s, &fail(e.message)).await,
            }
        }
    }
}

/// The attach socket's path for an API socket path.
pub fn attach_path(api_socket: &Path) -> std::path::PathBuf {
    let mut p = api_socket.as_os_str().to_owned();
    p.push(".attach");
    p.into()
}
