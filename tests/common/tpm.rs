//! The TPM in end-to-end tests. Every test config names `tpm_device = <temp dir>/no-tpm` (see
//! [`no_tpm`]): `seal = "auto"` (the default) then finds no TPM, whatever the machine has, and
//! the host's own TPM is never touched. Tests of the sealed store start swtpm
//! (`devauth_testserver::swtpm`) and point the config at its socket with [`use_tpm`].

use std::path::{Path, PathBuf};

#[allow(unused_imports)]
pub use devauth_testserver::swtpm::{Swtpm, usable_or_skip};

/// The `tpm_device` of every test config: a path in the test's temp dir where nothing is.
pub fn no_tpm(dir: &Path) -> PathBuf {
    dir.join("no-tpm")
}

/// Rewrites the config file at `config` (written with [`no_tpm`] for the temp dir `dir`) to
/// seal with `seal` (`"tpm2"`, `"auto"`...) using the TPM at `socket`, plus any `extra`
/// `[storage]` lines.
pub fn use_tpm(config: &Path, dir: &Path, socket: &Path, seal: &str, extra: &str) {
    let text = std::fs::read_to_string(config).expect("read the config");
    let from = format!("tpm_device = \"{}\"\n", no_tpm(dir).display());
    assert!(
        text.contains(&from),
        "the config has no test tpm_device line:\n{text}"
    );
    let to = format!(
        "tpm_device = \"{}\"\nseal = \"{seal}\"\n{extra}",
        socket.display()
    );
    std::fs::write(config, text.replace(&from, &to)).expect("write the config");
}
