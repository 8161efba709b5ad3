//! The repository's scripts can be run as the README and each other call
//! them (`scripts/bench-all` runs `scripts/bench-failures` by path): every
//! file in `scripts/` that starts with `#!` is executable. A fresh clone
//! takes the mode from git, so a script committed without it fails here
//! before it fails a user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[test]
fn every_script_with_a_shebang_is_executable() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut scripts = 0;
    let mut not_executable = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read scripts/") {
        let path = entry.expect("an entry of scripts/").path();
        if !path.is_file() {
            continue;
        }
        let head = std::fs::read(&path).expect("read a script");
        if !head.starts_with(b"#!") {
            continue;
        }
        scripts += 1;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        if mode & 0o111 != 0o111 {
            not_executable.push(format!("{} ({mode:o})", path.display()));
        }
    }
    assert!(scripts >= 10, "only {scripts} scripts found in {dir:?}");
    assert!(
        not_executable.is_empty(),
        "scripts without the executable bit (git update-index --chmod=+x): {not_executable:?}"
    );
}
