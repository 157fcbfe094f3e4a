//! Names the commit the binary is built from, for `kaitong --version`: `GIT_COMMIT` when set
//! (a Docker build without `.git` passes it as a build argument), else `git rev-parse`. The
//! result is `KT_BUILD_COMMIT`, not a `KAITONG_*` name: cargo also sets it when running tests,
//! and the bot refuses unknown `KAITONG_*` variables.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    // Rebuild when HEAD moves (a worktree's git dir is elsewhere than `.git`).
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
    }
    let commit = std::env::var("GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let hash = git(&["rev-parse", "--short=12", "HEAD"])?;
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            Some(if dirty { format!("{hash}-dirty") } else { hash })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KT_BUILD_COMMIT={commit}");
}
