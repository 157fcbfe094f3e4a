//! `kaitong-dev catalog audit`: clean on the real catalog and the seed (90 rows), non-zero on an
//! unmarked value. (The audit's rules are the root's `tests/it/seed_promises.rs`.)

use std::path::Path;

use crate::{kaitong_dev, root};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readdir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn kaitong_catalog_audit_prints_90_rows_and_exits_non_zero_on_an_unmarked_value() {
    let out = kaitong_dev()
        .args(["catalog", "audit"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 90);

    // A copy of `dialogs/` with #10 given an address the seed does not name, unmarked.
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dialogs");
    copy_dir(&root().join("dialogs"), &dir);
    let path = dir.join("services").join("010.toml");
    let service = std::fs::read_to_string(&path).expect("service file");
    std::fs::write(
        &path,
        service.replace(
            "channel = \"email\"\n",
            "channel = \"email\"\nchannel_address = \"qijianbanzengzhi@wangdian.cn\"\n",
        ),
    )
    .expect("write");
    let out = kaitong_dev()
        .env("KAITONG_DIALOGS__DIR", &dir)
        .args(["catalog", "audit", "--seed", "tests/fixtures/seed.txt"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("#10 数据迁移"), "{text}");
    assert!(text.contains("✗ 未标注 channel_address"), "{text}");
}
