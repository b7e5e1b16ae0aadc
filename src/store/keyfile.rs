//! Private key files devauth writes itself: the DPoP proof key beside the token file
//! (`<token file>.dpop-key`) and the client key `devauth keygen` makes (`client_key_file`).
//!
//! They are written like the token file — a temp file created `O_EXCL` with mode 0600, fsync,
//! rename, fsync of the directory — and read bounded. The content is the key as PEM text
//! (PKCS#8), held as a [`Secret`] from the moment it is read; turning it into a key is `oauth`'s
//! job, and this module never looks inside it.
//!
//! A key file is never replaced: [`KeyFile::create`] refuses when one exists, because tokens
//! (DPoP) or a registration at the provider (client keys) are bound to the key in it.
//!
//! Protection: mode 0600 in the store's 0700 directory, exactly like the token file — so a
//! flash dump copies the key along with the tokens. Hardware protection (a sealed store, or a
//! key that never leaves a TPM) is the sealed store's part of issue 20.

use super::*;

/// One key file.
#[derive(Clone, Debug)]
pub struct KeyFile {
    file: TokenStore,
}

impl KeyFile {
    /// The DPoP key of one token store: `<token file>.dpop-key`, beside it.
    pub fn dpop_for(tokens: &TokenStore) -> KeyFile {
        let mut name = tokens.path().as_os_str().to_os_string();
        name.push(".dpop-key");
        KeyFile::at(PathBuf::from(name))
    }

    /// A key file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> KeyFile {
        KeyFile {
            file: TokenStore::new(path),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The key's PEM text; `None` when there is no file.
    pub fn load(&self) -> Result<Option<Secret>, StoreError> {
        self.file.remove_stale_temps();
        let Some(bytes) = self.file.read_current()? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|_| StoreError::Corrupt {
            path: self.path().to_path_buf(),
            detail: "not a PEM text file".into(),
        })?;
        Ok(Some(Secret::new(text)))
    }

    /// Writes a new key file (atomically, 0600). An existing file is never replaced: the
    /// error says so.
    pub fn create(&self, pem: &Secret) -> Result<(), StoreError> {
        if fs::symlink_metadata(self.path()).is_ok() {
            return Err(StoreError::Io {
                path: self.path().to_path_buf(),
                op: "create key file",
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a key file is already there; it is never replaced (delete it first)",
                ),
            });
        }
        self.file
            .prepare_save()?
            .commit_bytes(pem.expose().as_bytes())
    }

    /// Removes the key file; `true` if there was one.
    pub fn delete(&self) -> Result<bool, StoreError> {
        self.file.delete()
    }

    /// Permission bits a key file should not have (group or other access), when it has them.
    pub fn exposed_mode(&self) -> Option<u32> {
        let mode = fs::metadata(self.path()).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_private_never_replaced_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path().join("state").join("tokens.json"));
        let key = KeyFile::dpop_for(&store);
        assert!(key.path().ends_with("tokens.json.dpop-key"));
        assert!(key.load().unwrap().is_none());
        let pem = Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        key.create(&pem).unwrap();
        assert_eq!(key.load().unwrap(), Some(pem.clone()));
        let mode = fs::metadata(key.path()).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert_eq!(key.exposed_mode(), None);
        let e = key.create(&Secret::new("other")).unwrap_err();
        assert!(e.to_string().contains("never replaced"), "{e}");
        assert_eq!(key.load().unwrap(), Some(pem));
        fs::set_permissions(key.path(), fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(key.exposed_mode(), Some(0o644));
        assert!(key.delete().unwrap());
        assert!(!key.delete().unwrap());
        assert!(key.load().unwrap().is_none());
    }

    #[test]
    fn a_binary_key_file_is_named_without_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyFile::at(dir.path().join("k.pem"));
        fs::write(key.path(), [0xff, 0xfe, 0x00]).unwrap();
        let e = key.load().unwrap_err().to_string();
        assert!(e.contains("not a PEM text file"), "{e}");
    }
}
