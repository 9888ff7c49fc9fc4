//! Errors of stream files, tree preparation and the repository lock.

use std::path::PathBuf;

/// What went wrong reading a stream, preparing a tree or locking a repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    #[error("{}:{line}:{column}: {message}", path.display())]
    StreamSyntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    StreamInvalid { path: PathBuf, message: String },
    #[error(
        "the tree has no kernel: no vmlinuz under /usr/lib/modules/<kver>/ or /boot/vmlinuz-<kver>"
    )]
    NoKernel,
    #[error("the tree has {count} kernels ({kvers}); an OSTree commit carries exactly one")]
    ManyKernels { count: usize, kvers: String },
    #[error("kernel {kver} has no initramfs (initramfs.img or /boot/initramfs-{kver}.img) and the tree has no dracut to build one")]
    NoInitramfs { kver: String },
    #[error("dracut could not build the initramfs of kernel {kver} ({status}): {detail}")]
    Dracut {
        kver: String,
        status: String,
        detail: String,
    },
    #[error("{}: locked by pid {pid} (another compose is running); try again later or pass --wait", path.display())]
    Locked { path: PathBuf, pid: String },
    /// The I/O error is the source, so a chain printed with `{:#}` shows
    /// it once.
    #[error("{action} {}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A stream file or lockfile that is not a small regular file.
    #[error(transparent)]
    ConfigFile(#[from] corral_configfile::ConfigFileError),
}

impl ComposeError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ComposeError {
        let path = path.into();
        move |source| ComposeError::Io {
            path,
            action,
            source,
        }
    }
}
