//! A stand-in for `browser_command`: a script that writes the URL it is given to `url.txt` in
//! the test's dir (the test then plays the browser through the test server), so no real
//! browser is ever started.

use super::{Env, scaled, wait_until};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Writes the script into `dir`; its path goes in `browser_command`.
pub fn fake_browser(dir: &Path) -> PathBuf {
    let script = dir.join("browser.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '%s' \"$1\" > \"$(dirname \"$0\")/url.tmp\" && mv \"$(dirname \"$0\")/url.tmp\" \"$(dirname \"$0\")/url.txt\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Waits for the URL the fake browser was given.
#[track_caller]
pub fn launched_url(env: &Env) -> String {
    let file = env.dir().join("url.txt");
    assert!(
        wait_until(scaled(Duration::from_secs(10)), || file.exists()),
        "the browser command was never run"
    );
    std::fs::read_to_string(file).unwrap()
}
