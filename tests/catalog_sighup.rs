//! SIGHUP reloads the catalog. Kept in its own test binary because it
//! signals the whole test process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kaitong::catalog::{CatalogHandle, reload_on_sighup};
use kaitong::domain::ServiceId;
use tokio::signal::unix::{SignalKind, signal};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readdir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[tokio::test]
async fn sighup_reloads_the_catalog() {
    // Registering a listener first guarantees SIGHUP is handled by tokio
    // (not the default action, which would end the test process).
    let _guard = signal(SignalKind::hangup()).expect("listen for SIGHUP");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().join("dialogs");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs"), &dir);
    let handle = CatalogHandle::load(&dir).expect("load");
    tokio::spawn(reload_on_sighup(handle.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let file = dir.join("services/033.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replace("name = \"赠品策略上限调整\"", "name = \"赠品上限(新)\""),
    )
    .expect("write");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    for _ in 0..50 {
        let name = handle
            .current()
            .service(ServiceId(33))
            .map(|s| s.name.clone());
        if name.as_deref() == Some("赠品上限(新)") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("catalog was not reloaded after SIGHUP");
}
