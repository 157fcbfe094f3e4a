//! `kaitong-dev understand` and `kaitong-dev eval` print what they promise. (The scores
//! themselves are pinned in-process by the root's `tests/it/understanding.rs`.)

use std::io::Write;

use crate::kaitong_dev;

#[test]
fn understand_prints_json_per_utterance() {
    let out = kaitong_dev()
        .args(["understand", "帮我给 abc_flagship 开一下电子发票"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["service"]["id"], 7);
    assert_eq!(json["service"]["name"], "电子发票");
    assert_eq!(json["slots"]["seller_account"], "abc_flagship");
    assert_eq!(json["candidates"][0]["id"], 7);

    let mut child = kaitong_dev()
        .arg("understand")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("你好\n支付宝数据透视\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["service"].is_null());
    assert!(
        lines[1]["service"].is_null(),
        "a close call names no single service"
    );
    assert_eq!(lines[1]["candidates"].as_array().unwrap().len(), 4);
}

#[test]
fn eval_prints_the_scores() {
    let out = kaitong_dev()
        .args(["eval", "tests/fixtures/understanding_eval.jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("top-1") && text.contains("none") && text.contains("lexical"),
        "{text}"
    );
}

#[test]
fn eval_prints_the_five_columns_for_both_wording_halves() {
    for half in ["dev", "test"] {
        let out = kaitong_dev()
            .args(["eval", &format!("tests/fixtures/wording_eval_{half}.jsonl")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{half}");
        let text = String::from_utf8(out.stdout).unwrap();
        for column in [
            "top-1",
            "offered",
            "taken ok",
            "taken BAD",
            "none",
            "acts read as meant",
        ] {
            assert!(text.contains(column), "{half}: no {column}: {text}");
        }
    }
}
