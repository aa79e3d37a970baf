//! Root file systems for containers. [`busybox`] builds a tiny one from the host's
//! static busybox (Debian package `busybox-static`), enough for `netctl run` smoke
//! tests and debugging shells without any image machinery.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Where Debian puts busybox.
const BUSYBOX_CANDIDATES: [&str; 2] = ["/bin/busybox", "/usr/bin/busybox"];

const DIRS: [(&str, u32); 12] = [
    ("bin", 0o755),
    ("sbin", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("var", 0o755),
    ("run", 0o755),
];

const FILES: [(&str, &str); 4] = [
    (
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    ),
    ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    (
        "etc/hosts",
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    ),
    (
        "etc/resolv.conf",
        "# placeholder: netd bind-mounts the container's resolv.conf here\n",
    ),
];

/// The host's busybox binary, checked to be statically linked.
pub fn find_busybox() -> Result<PathBuf> {
    let path = BUSYBOX_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Busybox("not found in /bin or /usr/bin (apt-get install busybox-static)".into())
        })?;
    let bytes = fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    match is_static_elf(&bytes) {
        Ok(true) => Ok(path),
        Ok(false) => Err(Error::Busybox(format!(
            "{} is dynamically linked; install busybox-static",
            path.display()
        ))),
        Err(why) => Err(Error::Busybox(format!("{}: {why}", path.display()))),
    }
}

/// Whether an ELF image has no program interpreter (PT_INTERP), i.e. runs without the
/// host's dynamic loader and libraries. Static-PIE counts as static.
pub fn is_static_elf(b: &[u8]) -> std::result::Result<bool, String> {
    const PT_INTERP: u32 = 3;
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let le = match b[5] {
        1 => true,
        2 => false,
        _ => return Err("bad ELF data encoding".into()),
    };
    let rd = |off: usize, n: usize| -> std::result::Result<u64, String> {
        let s = b.get(off..off + n).ok_or("truncated ELF")?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if le { s[n - 1 - i] } else { s[i] } as u64;
            v = (v << 8) | byte;
        }
        Ok(v)
    };
    // (e_phoff offset, its size, e_phentsize offset) for ELF32 / ELF64.
    let (phoff, phentsize, phnum) = match b[4] {
        1 => (rd(28, 4)?, rd(42, 2)?, rd(44, 2)?),
        2 => (rd(32, 8)?, rd(54, 2)?, rd(56, 2)?),
        _ => return Err("bad ELF class".into()),
    };
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if rd(off as usize, 4)? as u32 == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// Build (or complete) a busybox root file system in `dir` using the host's static
/// busybox. Idempotent: existing files and links are left alone, except
/// `bin/busybox`, which is refreshed when it differs from the host's.
pub fn busybox(dir: &Path) -> Result<()> {
    busybox_from(&find_busybox()?, dir)
}

/// Like [`busybox`] with an explicit binary (not checked for static linking).
pub fn busybox_from(binary: &Path, dir: &Path) -> Result<()> {
    for (d, mode) in DIRS {
        let p = dir.join(d);
        match fs::DirBuilder::new().recursive(true).mode(mode).create(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("mkdir {}", p.display()), e)),
        }
        // mkdir applies the umask; the sticky /tmp and private /root need exact modes.
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(io(format!("chmod {}", p.display())))?;
    }

    let host = fs::read(binary).map_err(io(format!("read {}", binary.display())))?;
    let dest = dir.join("bin/busybox");
    if fs::read(&dest).ok().as_deref() != Some(&host[..]) {
        let tmp = dir.join("bin/.busybox.tmp");
        fs::write(&tmp, &host).map_err(io(format!("write {}", tmp.display())))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
            .map_err(io(format!("chmod {}", tmp.display())))?;
        fs::rename(&tmp, &dest).map_err(io(format!("rename to {}", dest.display())))?;
    }

    for applet in applets(binary)? {
        let link = dir.join(&applet);
        if fs::symlink_metadata(&link).is_ok() {
            continue;
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(io(format!("mkdir {}", parent.display())))?;
        }
        match symlink("/bin/busybox", &link) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(format!("symlink {}", link.display()), e)),
        }
    }

    for (f, content) in FILES {
        let p = dir.join(f);
        if fs::symlink_metadata(&p).is_err() {
            fs::write(&p, content).map_err(io(format!("write {}", p.display())))?;
        }
    }
    Ok(())
}

/// Applet paths relative to the root (`bin/sh`, `usr/bin/env`...), from
/// `busybox --list-full`, or `--list` (all in `bin/`) for builds without it.
fn applets(binary: &Path) -> Result<Vec<String>> {
    let run = |flag: &str| Command::new(binary).arg(flag).output();
    let out = run("--list-full").map_err(io(format!("run {} --list-full", binary.display())))?;
    let (text, prefix) = if out.status.success() && !out.stdout.is_empty() {
        (out.stdout, "")
    } else {
        let out = run("--list").map_err(io(format!("run {} --list", binary.display())))?;
        if !out.status.success() {
            return Err(Error::Busybox(format!(
                "{} --list failed: {}",
                binary.display(),
                out.status
            )));
        }
        (out.stdout, "bin/")
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .map(str::trim)
        // `linuxrc` is an initrd entry point, `busybox` itself is copied, not linked;
        // names with `..` would escape the rootfs.
        .filter(|l| {
            !l.is_empty() && *l != "linuxrc" && !l.ends_with("/busybox") && !l.contains("..")
        })
        .map(|l| format!("{prefix}{}", l.trim_start_matches('/')))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_interp_detection() {
        // The test binary itself is dynamically linked (glibc target).
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(is_static_elf(&me), Ok(false));
        assert!(
            is_static_elf(b"#!/bin/sh\n echo not an elf at all, padding padding padding").is_err()
        );
    }

    #[test]
    fn builds_idempotently() {
        let Ok(bb) = find_busybox() else {
            eprintln!("SKIP: no static busybox on this host");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        busybox_from(&bb, dir.path()).unwrap();
        fs::write(dir.path().join("etc/hosts"), "custom\n").unwrap();
        busybox_from(&bb, dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("etc/hosts")).unwrap(),
            "custom\n"
        );
        assert_eq!(
            fs::read_link(dir.path().join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert!(
            dir.path().join("sbin/ip").symlink_metadata().is_ok()
                || dir.path().join("bin/ip").symlink_metadata().is_ok()
        );
        let tmp_mode = fs::metadata(dir.path().join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(tmp_mode, 0o1777);
    }
}
