//! The crate's error type: one enum, so the daemon can map failures to API errors.
//!
//! Failures inside the container child (after `clone`) travel back over a pipe as
//! (step, errno) and become [`Error::Setup`], so a missing command reads
//! `exec /bin/nosuch: No such file or directory` instead of a bare exit code 127.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong while building a rootfs, starting or managing a container.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The rootfs folder does not exist or is not a directory.
    #[error("rootfs {}: no such directory", path.display())]
    RootfsMissing {
        /// The path given in the spec.
        path: PathBuf,
    },
    /// The rootfs has an unexpected shape (e.g. a symlink where a mount point goes).
    #[error("rootfs {}: {reason}", path.display())]
    Rootfs {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The spec is unusable (empty argv, NUL bytes, bad hostname...).
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// A setup step in the child (mount, pivot_root, exec...) failed.
    #[error("{step}: {}", errno.desc())]
    Setup {
        /// Human-readable step, e.g. `exec /bin/nosuch` or `mount proc on /x/proc`.
        step: String,
        /// The errno the step failed with.
        errno: Errno,
    },
    /// A syscall made by the calling process failed.
    #[error("{context}: {}", errno.desc())]
    Sys {
        /// What we were doing.
        context: String,
        /// The errno.
        errno: Errno,
    },
    /// File-system work in the calling process failed.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No usable static busybox on the host.
    #[error("busybox: {0}")]
    Busybox(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn sys(context: impl Into<String>, errno: Errno) -> Self {
        Error::Sys {
            context: context.into(),
            errno,
        }
    }
}
