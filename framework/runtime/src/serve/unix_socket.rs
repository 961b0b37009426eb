//! The Unix socket `modelstage serve` listens on besides its TCP port when
//! `MODELSTAGE_UNIX_SOCKET` names one (a modelstage extension, docs/contract.md
//! (`modelstage serve`, Unix socket)): a front end on the same machine (the router of
//! `modelstage deploy`, the runtime of `modelstage api`) reaches the server over
//! it without the kernel's loopback TCP path. The TCP port stays, as the
//! contract requires.
//!
//! The socket file is made mode 0600 (only its owner connects), replaces only
//! a socket (one left by a server that is gone, never another kind of file),
//! and is removed when the server stops.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::config::ConfigError;

/// The setting that names the socket.
pub const SETTING: &str = "MODELSTAGE_UNIX_SOCKET";

/// The longest socket path the OS takes, in bytes: `sun_path` holds 108,
/// the closing NUL included.
pub const MAX_PATH_BYTES: usize = 107;

/// A socket the server listens on; its file is removed when this is dropped.
#[derive(Debug)]
pub struct UnixSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
    /// The socket file's identity, so that only this socket's file is removed
    /// (not one a later server put at the same path).
    file: (u64, u64),
}

impl UnixSocket {
    /// The socket `MODELSTAGE_UNIX_SOCKET` names, bound; `None` when it is unset.
    pub fn from_env() -> Result<Option<UnixSocket>, ConfigError> {
        match std::env::var_os(SETTING).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(path) => UnixSocket::bind(PathBuf::from(path)).map(Some),
        }
    }

    /// Binds a socket at `path`: a path the OS takes, in a folder that exists,
    /// where nothing but a socket is.
    pub fn bind(path: PathBuf) -> Result<UnixSocket, ConfigError> {
        let refuse = |reason: String| ConfigError::UnixSocket {
            path: path.clone(),
            reason,
        };
        let bytes = path.as_os_str().as_bytes().len();
        if bytes > MAX_PATH_BYTES {
            return Err(refuse(format!(
                "the path is {bytes} bytes long; a socket path takes at most {MAX_PATH_BYTES} \
                 (108 with its closing NUL): choose a shorter one"
            )));
        }
        // `sock` alone is in the working directory, whose parent is "".
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            if !folder.is_dir() {
                return Err(refuse(format!("its folder {} does not exist", folder.display())));
            }
        }
        match std::fs::symlink_metadata(&path) {
            // A socket left by a server that is gone: the one kind of file replaced.
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(&path)
                .map_err(|e| refuse(format!("cannot replace the socket there: {e}")))?,
            Ok(_) => {
                return Err(refuse(
                    "a file that is not a socket is there; the server replaces only a socket: \
                     remove it or choose another path"
                        .to_string(),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(refuse(format!("cannot inspect the path: {e}"))),
        }
        let listener = UnixListener::bind(&path).map_err(|e| refuse(format!("cannot listen on it: {e}")))?;
        let identity = std::fs::metadata(&path).map(|m| (m.dev(), m.ino()));
        // Until this, the socket has the mode the umask gives; it offers no more than the TCP
        // port does meanwhile.
        let restricted = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        match (identity, restricted) {
            (Ok(file), Ok(())) => Ok(UnixSocket {
                path,
                listener: Some(listener),
                file,
            }),
            (Err(e), _) | (_, Err(e)) => {
                let _ = std::fs::remove_file(&path);
                Err(refuse(format!("cannot make the socket private (mode 0600): {e}")))
            }
        }
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listener, for the server to take (once).
    pub fn take_listener(&mut self) -> Option<UnixListener> {
        self.listener.take()
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == self.file);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!("cannot remove the socket {}: {e}", self.path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_private_replaces_only_a_socket_and_goes_when_dropped() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("serve.sock");
        let socket = UnixSocket::bind(path.clone()).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // A socket left behind is replaced; the first one's file is then not its to remove.
        let again = UnixSocket::bind(path.clone()).unwrap();
        drop(socket);
        assert!(path.exists(), "the first socket removed its successor's file");
        drop(again);
        assert!(!path.exists());

        let file = folder.path().join("notes.txt");
        std::fs::write(&file, b"keep").unwrap();
        let refused = UnixSocket::bind(file.clone()).unwrap_err().to_string();
        assert!(
            refused.contains("MODELSTAGE_UNIX_SOCKET") && refused.contains("not a socket"),
            "{refused}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    }

    #[test]
    fn a_path_too_long_or_in_no_folder_is_refused() {
        let long = PathBuf::from(format!("/tmp/{}", "s".repeat(MAX_PATH_BYTES)));
        let refused = UnixSocket::bind(long).unwrap_err().to_string();
        assert!(
            refused.contains("MODELSTAGE_UNIX_SOCKET") && refused.contains("at most 107"),
            "{refused}"
        );
        let folder = tempfile::tempdir().unwrap();
        let nowhere = folder.path().join("missing").join("serve.sock");
        let refused = UnixSocket::bind(nowhere).unwrap_err().to_string();
        assert!(refused.contains("does not exist"), "{refused}");
    }
}
