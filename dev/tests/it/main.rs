//! The `kaitong-dev` binary as a developer uses it, one binary for the crate (like the root's
//! `tests/it`): `chat` in-process and against a running server, `understand`, `eval`, the
//! catalog audit and `distill`. Every command runs from the workspace root, where `dialogs/`,
//! `config/` and `tests/fixtures/` are. Tests that drive the bot itself (with the simulator and
//! peer of this crate) are the root's `tests/it`.
#![allow(clippy::unwrap_used)]

mod audit;
mod binary;
mod chat;
mod distill;
mod understand;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate is `dev/` inside it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("dev/ has a parent")
        .to_path_buf()
}

/// The `kaitong-dev` binary, run from the workspace root with no `RUST_LOG` and, since tests
/// run side by side, the admin listener on a free port unless a test names one.
pub fn kaitong_dev() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kaitong-dev"));
    cmd.current_dir(root());
    cmd.env_remove("RUST_LOG");
    cmd.env("KAITONG_SERVER__ADMIN_LISTEN", "127.0.0.1:0");
    cmd
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
