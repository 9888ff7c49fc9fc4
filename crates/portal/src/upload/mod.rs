//! Submitted archives, which are hostile until proven otherwise:
//! [`unpack`] writes a tar or tar.gz into a fresh temporary directory
//! entry by entry, refusing what could reach outside it or exhaust the
//! disk; [`folder`] then checks that what came out is a library folder.

pub mod folder;
pub mod unpack;

pub use folder::{library_folder, FolderError, LibraryFolder};
pub use unpack::{unpack, Limits, UnpackError, Unpacked};

#[cfg(test)]
mod tests;
