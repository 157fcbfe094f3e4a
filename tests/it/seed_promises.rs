//! Issue 12, "promise only what the seed promises": the real catalog in `dialogs/` against the
//! seed (`tests/fixtures/seed.txt`). Every channel, handler, window, address, choice list and
//! cap is in the seed's row or marked `[[assumed]]` with a note; `kaitong-dev catalog audit` shows
//! it row by row and fails on an unmarked value; an assumed choice list takes "其他: …".

use std::path::{Path, PathBuf};

use kaitong::catalog::audit::{audit, render_audit, seed_rows};
use kaitong::catalog::{AssumedValue, Catalog, FieldKey, FieldValue, FilingRoute};
use kaitong::domain::ServiceId;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dialogs() -> PathBuf {
    root().join("dialogs")
}

fn seed() -> String {
    std::fs::read_to_string(root().join("tests/fixtures/seed.txt")).expect("seed fixture readable")
}

fn load(dir: &Path) -> Catalog {
    Catalog::load(dir).unwrap_or_else(|e| panic!("catalog must load: {e}"))
}

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

/// A copy of `dialogs/` with one service file edited.
fn edited_catalog(file: &str, edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dialogs");
    copy_dir(&dialogs(), &dir);
    let path = dir.join("services").join(file);
    let text = std::fs::read_to_string(&path).expect("service file");
    std::fs::write(&path, edit(text)).expect("write");
    (tmp, dir)
}

fn key(s: &str) -> FieldKey {
    FieldKey::parse(s).expect("valid key")
}

#[test]
fn the_catalog_holds_no_unmarked_value_absent_from_the_seed() {
    let report = audit(&load(&dialogs()), &seed());
    assert!(report.is_clean(), "unmarked: {:#?}", report.unmarked());
    assert_eq!(report.rows.len(), 90);
}

#[test]
fn the_known_cases_are_fixed_or_marked() {
    let c = load(&dialogs());
    let get = |n: u16| c.service(ServiceId(n)).expect("service exists");
    // #10: the seed gives no address; the one #4 names is not copied over.
    assert_eq!(get(10).route, FilingRoute::Email { address: None });
    // #1: the seed's 处理人 column is empty, so the team is an assumption.
    assert!(get(1).is_assumed(&AssumedValue::Team));
    // #86: the document types are ours, and so the list takes "其他: …".
    let s86 = get(86);
    assert!(s86.is_assumed(&AssumedValue::Options(key("settlement_doc_types"))));
    let types = s86
        .field(&key("settlement_doc_types"))
        .expect("86 asks for the types");
    assert!(types.spec.other_allowed);
    // #4 keeps the seed's own address and handler, with nothing to mark.
    assert!(!get(4).is_assumed(&AssumedValue::RouteAddress));
    assert!(!get(4).is_assumed(&AssumedValue::Handler));
}

#[test]
fn the_audit_prints_every_row_with_channel_handler_notes_and_assumptions() {
    let c = load(&dialogs());
    let report = audit(&c, &seed());
    let text = render_audit(&report);
    let rows = seed_rows(&seed());
    assert_eq!(rows.len(), 90);
    for s in c.services() {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("#{} {} |", s.id, s.name)))
            .unwrap_or_else(|| panic!("no line for #{}:\n{text}", s.id));
        assert!(
            line.contains("渠道 seed: ") && line.contains("处理人 seed: ") && line.contains("备注"),
            "{line}"
        );
    }
    let line = |n: u16| {
        text.lines()
            .find(|l| l.starts_with(&format!("#{n} ")))
            .unwrap_or_default()
    };
    assert!(line(7).contains("渠道 seed: 资源管理系统 · catalog: 资源管理系统 ✓"));
    assert!(line(7).contains("处理人 seed: 职能组 · catalog: 职能组 ✓"));
    assert!(line(4).contains("江雪"), "{}", line(4));
    assert!(
        line(1).contains("处理人 seed: — · catalog: 运维 ≠ 假设"),
        "{}",
        line(1)
    );
    assert!(
        text.contains("假设 options.settlement_doc_types: "),
        "{text}"
    );
    assert!(text.contains("假设 team: "), "{text}");
    assert!(!text.contains("✗"), "{text}");
    assert!(
        text.ends_with("audit: 90 rows, 9 assumptions, 0 unmarked\n"),
        "{text}"
    );
}

#[test]
fn an_invented_address_or_handler_or_cap_fails_the_audit_until_marked() {
    // #10 with #4's address copied back in: the seed's row 10 names no address.
    let (_tmp, dir) = edited_catalog("010.toml", |t| {
        t.replace(
            "channel = \"email\"\n",
            "channel = \"email\"\nchannel_address = \"qijianbanzengzhi@wangdian.cn\"\n",
        )
    });
    let report = audit(&load(&dir), &seed());
    assert_eq!(
        report.unmarked(),
        vec!["#10: channel_address: qijianbanzengzhi@wangdian.cn is not in the seed's row"]
    );
    assert!(render_audit(&report).contains("✗ 未标注 channel_address"));

    // A handler the seed does not name, then the same handler marked.
    let (_tmp, dir) = edited_catalog("007.toml", |t| {
        t.replace("channel = ", "handler = \"王五\"\nchannel = ")
    });
    let report = audit(&load(&dir), &seed());
    assert_eq!(
        report.unmarked(),
        vec!["#7: handler: 王五 is not in the seed's row"]
    );
    let (_tmp, dir) = edited_catalog("007.toml", |t| {
        t.replace("channel = ", "handler = \"王五\"\nchannel = ")
            + "\n[[assumed]]\nwhat = \"handler\"\nnote = \"职能组排班\"\n"
    });
    assert!(audit(&load(&dir), &seed()).is_clean());

    // A cap the seed does not give (#33: 上限3000).
    let (_tmp, dir) = edited_catalog("033.toml", |t| t.replace("max = 3000", "max = 5000"));
    let unmarked = audit(&load(&dir), &seed()).unmarked();
    assert_eq!(
        unmarked,
        vec!["#33: cap.adjusted_amount: 5000 not in the seed's row"]
    );

    // A window promising a time the seed does not (#1 says nothing of days).
    let (_tmp, dir) = edited_catalog("001.toml", |t| {
        t.replace("进度以工单为准", "2 个工作日内完成")
    });
    let unmarked = audit(&load(&dir), &seed()).unmarked();
    assert_eq!(
        unmarked,
        vec!["#1: window: \"2 个工作日\" is not in the seed's row"]
    );
}

#[test]
fn assumptions_must_name_something_the_service_has_and_say_why() {
    let (_tmp, dir) = edited_catalog("033.toml", |t| {
        t + "\n[[assumed]]\nwhat = \"options.adjusted_amount\"\nnote = \"x\"\n"
    });
    let err = Catalog::load(&dir).expect_err("options of an integer field");
    assert!(err.to_string().contains("033.toml:"), "{err}");
    assert!(err.to_string().contains("names nothing"), "{err}");
    let (_tmp, dir) = edited_catalog("033.toml", |t| {
        t + "\n[[assumed]]\nwhat = \"team\"\nnote = \" \"\n"
    });
    let err = Catalog::load(&dir).expect_err("a note is required");
    assert!(err.to_string().contains("needs a `note`"), "{err}");
    let (_tmp, dir) = edited_catalog("033.toml", |t| {
        t + "\n[[assumed]]\nwhat = \"colour\"\nnote = \"x\"\n"
    });
    let err = Catalog::load(&dir).expect_err("an unknown kind");
    assert!(
        err.to_string().contains("unknown assumption `colour`"),
        "{err}"
    );
    let (_tmp, dir) = edited_catalog("033.toml", |t| {
        t.replace(
            "key = \"adjusted_amount\"\n",
            "key = \"adjusted_amount\"\nother_allowed = true\n",
        )
    });
    let err = Catalog::load(&dir).expect_err("other_allowed on a number");
    assert!(
        err.to_string()
            .contains("`other_allowed` needs a choice field"),
        "{err}"
    );
}

#[test]
fn an_assumed_list_takes_other_in_the_answer_and_offers_it_for_unlisted_values() {
    let c = load(&dialogs());
    let s86 = c.service(ServiceId(86)).expect("86");
    let types = &s86.field(&key("settlement_doc_types")).expect("types").spec;
    let ok = |raw: &str| {
        types
            .parse_answer(raw)
            .unwrap_or_else(|e| panic!("{raw:?}: {e}"))
    };
    let choices = |v: &[&str]| FieldValue::Choices(v.iter().map(|s| (*s).to_owned()).collect());
    assert_eq!(ok("其他: 库存调整单"), choices(&["其他: 库存调整单"]));
    assert_eq!(ok("其它：库存调整单"), choices(&["其他: 库存调整单"]));
    assert_eq!(
        ok("采购单, 其他: 库存调整单"),
        choices(&["采购单", "其他: 库存调整单"])
    );
    // A listed type written as 其他 is that type; the option named 其他… stays an option.
    assert_eq!(ok("其他: 调拨单"), choices(&["调拨单"]));
    assert_eq!(ok("其他出入库单"), choices(&["其他出入库单"]));
    // 其他 alone, or its number after the list, asks for the name.
    for raw in ["其他", "7"] {
        let e = types.parse_answer(raw).expect_err(raw);
        assert!(e.message.contains("其他: "), "{raw}: {}", e.message);
    }
    assert!(
        types.render_prompt().contains("其他: "),
        "{}",
        types.render_prompt()
    );
    // Not in the list: refused as before, but offered as 其他.
    assert!(types.parse_answer("库存调整单").is_err());
    assert_eq!(
        types.as_other("采购单 库存调整单"),
        Some(choices(&["采购单", "其他: 库存调整单"]))
    );
    assert_eq!(types.as_other("采购"), None, "ambiguous, not other");
    assert_eq!(types.as_other("9"), None, "a number is not a type");
    // A list from the seed is closed: nothing is offered as 其他.
    let s3 = c.service(ServiceId(3)).expect("3");
    let env = &s3.field(&key("api_env")).expect("env").spec;
    assert!(!env.other_allowed);
    assert_eq!(env.as_other("测试环境"), None);
    assert!(env.parse_answer("其他: 测试环境").is_err());
}

#[test]
fn a_receipt_names_no_address_the_seed_does_not_give_and_no_assumed_team() {
    use kaitong::dialog::engine::Engine;
    use kaitong::dialog::session::Form;
    use kaitong::dialog::understand::{Matcher, Tuning};
    use kaitong::requests::BatchSchedule;

    // #10 made fileable (its guidance removed) to see what its receipt would say.
    let (_tmp, dir) = edited_catalog("010.toml", |t| {
        let start = t.find("[[guidance]]").expect("10 has guidance");
        let end = start + t[start..].find("\n\n").expect("a blank line after it");
        format!(
            "{}[[fields]]\nkey = \"seller_account\"\n{}",
            &t[..start],
            &t[end..]
        )
    });
    let catalog = load(&dir);
    let matcher = Matcher::new(&catalog, Tuning::load(&dir).expect("tuning"));
    let schedule = BatchSchedule::default();
    let engine = Engine {
        catalog: &catalog,
        matcher: &matcher,
        schedule: &schedule,
        in_group: false,
        meaning: None,
    };
    let receipt = |id: u16| {
        let form = Form::new(ServiceId(id), Default::default(), Vec::new(), 0);
        engine.receipt(&form, "KT-20261202-0001", "今天 17:30 前", &[])
    };
    let ten = receipt(10);
    assert!(ten.contains("邮件申请, 处理方会邮件回复"), "{ten}");
    assert!(!ten.contains('@'), "no address: {ten}");
    assert!(ten.contains("处理人: 工单/邮件的处理人"), "{ten}");
    // #4's address and handler are the seed's own, and shown.
    let four = receipt(4);
    assert!(
        four.contains("qijianbanzengzhi@wangdian.cn") && four.contains("江雪"),
        "{four}"
    );
    // A seed team (产研 for #33) is named.
    assert!(receipt(33).contains("处理人: 产研"), "{}", receipt(33));
}
