//! Each kind of rule in the catalog, exercised through the public API the
//! dialog engine uses; broken catalogs are rejected with file, line and
//! reason; reload keeps the old catalog when the new one is broken.

use std::path::{Path, PathBuf};

use kaitong::catalog::{
    Answers, ApplicantRule, Catalog, CatalogError, CatalogHandle, FieldKey, FieldValue, Service,
    ServiceField,
};
use kaitong::domain::ServiceId;

fn dialogs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs")
}

fn load() -> Catalog {
    match Catalog::load(&dialogs()) {
        Ok(c) => c,
        Err(e) => panic!("catalog must load: {e}"),
    }
}

fn key(s: &str) -> FieldKey {
    FieldKey::parse(s).expect("valid key")
}

fn service(c: &Catalog, n: u16) -> &Service {
    c.service(ServiceId(n)).expect("service exists")
}

fn field<'a>(s: &'a Service, k: &str) -> &'a ServiceField {
    s.field(&key(k))
        .unwrap_or_else(|| panic!("service {} has field {k}", s.id))
}

fn ok(f: &ServiceField, raw: &str) -> FieldValue {
    match f.spec.parse_answer(raw) {
        Ok(v) => v,
        Err(e) => panic!("{raw:?} should be accepted for {}: {e}", f.spec.label),
    }
}

fn rejected(f: &ServiceField, raw: &str) -> String {
    match f.spec.parse_answer(raw) {
        Ok(v) => panic!("{raw:?} should be rejected for {}, got {v:?}", f.spec.label),
        Err(e) => e.message,
    }
}

// ---------- caps and numbers ----------

#[test]
fn cap_33_rejects_3001_accepts_3000() {
    let c = load();
    let f = field(service(&c, 33), "adjusted_amount");
    assert_eq!(ok(f, "3000"), FieldValue::Integer(3000));
    assert_eq!(ok(f, "三千"), FieldValue::Integer(3000));
    assert_eq!(ok(f, "３０００条"), FieldValue::Integer(3000));
    let msg = rejected(f, "3001");
    assert!(msg.contains("上限是 3000"), "{msg}");
    assert!(rejected(f, "很多").contains("数字"));
}

#[test]
fn per_service_caps_and_defaults() {
    let c = load();
    let cases: &[(u16, Option<i64>, Option<i64>)] = &[
        (30, None, Some(500)),
        (33, None, Some(3000)),
        (50, Some(50), Some(200)),
        (51, Some(50), Some(200)),
        (52, Some(50), Some(200)),
        (53, Some(100), Some(400)),
        (58, None, Some(200)),
        (59, Some(10000), Some(30000)),
        (60, Some(200), Some(400)),
        (76, Some(100), Some(300)),
        (85, None, Some(300)),
        (87, None, Some(50)),
        (82, Some(60), Some(60)),
    ];
    for (n, default, max) in cases {
        let f = field(service(&c, *n), "adjusted_amount");
        match &f.spec.kind {
            kaitong::catalog::FieldKind::Integer {
                default: d, max: m, ..
            } => {
                assert_eq!((d, m), (default, max), "service {n}");
            }
            other => panic!("service {n}: integer expected, got {other:?}"),
        }
    }
    // 59: "3w" is the cap, "3.1w" is over it.
    let f59 = field(service(&c, 59), "adjusted_amount");
    assert_eq!(ok(f59, "3w"), FieldValue::Integer(30000));
    assert!(rejected(f59, "3.1万").contains("30000"));
    // 84: beyond 32 days.
    let f84 = field(service(&c, 84), "adjusted_amount");
    assert!(rejected(f84, "32").contains("33"));
    assert_eq!(ok(f84, "90天"), FieldValue::Integer(90));
    // 50: Chinese numerals are parsed before the cap is applied.
    assert!(rejected(field(service(&c, 50), "adjusted_amount"), "两千").contains("200"));
}

#[test]
fn service_61_only_200_300_400() {
    let c = load();
    let f = field(service(&c, 61), "adjusted_amount");
    let msg = rejected(f, "250");
    assert!(msg.contains("200/300/400"), "{msg}");
    assert_eq!(ok(f, "300"), FieldValue::Integer(300));
    assert_eq!(ok(f, "四百"), FieldValue::Integer(400));
}

#[test]
fn service_46_above_300_needs_rnd() {
    let c = load();
    let s = service(&c, 46);
    let f = field(s, "pick_group_size");
    let mut a = Answers::new();
    a.insert(key("pick_group_size"), ok(f, "300"));
    assert!(s.refusal_for(&a).is_none());
    a.insert(key("pick_group_size"), ok(f, "500"));
    let r = s.refusal_for(&a).expect("refused above 300");
    assert!(r.message.contains("联系研发"));
}

#[test]
fn service_54_at_most_two_days_never_permanent() {
    let c = load();
    let f = field(service(&c, 54), "open_duration");
    assert_eq!(ok(f, "3小时"), FieldValue::DurationHours(3));
    assert_eq!(ok(f, "2天"), FieldValue::DurationHours(48));
    assert_eq!(ok(f, "48h"), FieldValue::DurationHours(48));
    assert!(rejected(f, "3天").contains("48"));
    assert!(rejected(f, "49h").contains("48"));
    assert!(rejected(f, "永久").contains("不能永久"));
    assert!(rejected(f, "permanent").contains("不能永久"));
}

// ---------- conditions, refusals, guidance ----------

#[test]
fn service_43_disclaimer_only_when_closed() {
    let c = load();
    let s = service(&c, 43);
    let disclaimer = field(s, "disclaimer");
    let mut a = Answers::new();
    assert!(!disclaimer.is_active(&a));
    a.insert(key("impl_closed"), ok(field(s, "impl_closed"), "否"));
    assert!(!disclaimer.is_active(&a));
    a.insert(key("impl_closed"), ok(field(s, "impl_closed"), "已结项"));
    assert!(disclaimer.is_active(&a));
    // And the engine's "what next" helper agrees.
    let mut b = Answers::new();
    b.insert(key("seller_account"), FieldValue::Text("wdt01".into()));
    b.insert(key("reason"), FieldValue::Text("客户需要实施助手".into()));
    b.insert(key("impl_closed"), FieldValue::Bool(false));
    assert!(s.next_missing_field(&b).is_none());
    b.insert(key("impl_closed"), FieldValue::Bool(true));
    assert_eq!(
        s.next_missing_field(&b).map(|f| f.key().as_str()),
        Some("disclaimer")
    );
}

#[test]
fn service_23_taobao_refused_with_rename_guidance() {
    let c = load();
    let s = service(&c, 23);
    let platform = field(s, "shop_platform");
    let renamed = field(s, "taobao_renamed");
    let account = field(s, "seller_account");
    let mut a = Answers::new();
    a.insert(key("seller_account"), ok(account, "shop_a1"));
    a.insert(key("shop_platform"), ok(platform, "淘宝"));
    // A Taobao shop is asked whether it was renamed on Taobao (the seed's way to unbind).
    assert_eq!(
        s.next_missing_field(&a).map(|f| f.key().as_str()),
        Some("taobao_renamed")
    );
    assert!(s.refusal_for(&a).is_none(), "not before the answer");
    a.insert(key("taobao_renamed"), ok(renamed, "否"));
    let r = s.refusal_for(&a).expect("not renamed: refused");
    assert!(r.message.contains("修改店铺名称"), "{}", r.message);
    assert!(r.message.contains("订单处理完毕"), "{}", r.message);
    assert!(r.keep_form, "the form waits for the rename");
    a.insert(key("taobao_renamed"), ok(renamed, "已经改名了"));
    assert!(s.refusal_for(&a).is_none(), "renamed: filed");
    assert!(s.warnings.iter().any(|w| w.contains("订单处理完毕")));
    let mut b = Answers::new();
    b.insert(key("seller_account"), ok(account, "shop_a1"));
    b.insert(key("shop_platform"), ok(platform, "京东"));
    assert!(s.refusal_for(&b).is_none());
    assert_ne!(
        s.next_missing_field(&b).map(|f| f.key().as_str()),
        Some("taobao_renamed"),
        "only Taobao shops are asked"
    );
    // The platform is asked before the details, so the question comes early.
    assert_eq!(s.fields[1].key().as_str(), "shop_platform");
}

#[test]
fn service_3_test_environments_are_guidance_only() {
    let c = load();
    let s = service(&c, 3);
    let env = field(s, "api_env");
    let mut a = Answers::new();
    a.insert(key("api_env"), ok(env, "2"));
    assert_eq!(
        a.get(&key("api_env")),
        Some(&FieldValue::Choice("联调环境".into()))
    );
    let g = s.guidance_for(&a).expect("联调环境 is guidance-only");
    assert!(g.message.contains("https://open.wangdian.cn/open/login_on"));
    assert!(!field(s, "api_account").is_active(&a));
    a.insert(key("api_env"), ok(env, "联调测试"));
    assert!(
        s.guidance_for(&a)
            .expect("联调测试")
            .message
            .contains("产品经理")
    );
    a.insert(key("api_env"), ok(env, "正式"));
    assert!(s.guidance_for(&a).is_none());
    assert!(field(s, "api_secret").is_active(&a));
    // "联调" alone matches two options.
    assert!(rejected(env, "联调").contains("联调环境"));
}

#[test]
fn service_10_is_guidance_only_always() {
    let c = load();
    let s = service(&c, 10);
    assert!(s.guidance_for(&Answers::new()).is_some());
}

#[test]
fn services_35_36_need_wms_support() {
    let c = load();
    for n in [35, 36] {
        let s = service(&c, n);
        let mut a = Answers::new();
        a.insert(
            key("wms_supports_sn"),
            ok(field(s, "wms_supports_sn"), "不是"),
        );
        assert!(s.refusal_for(&a).is_some(), "service {n}");
        a.insert(
            key("wms_supports_sn"),
            ok(field(s, "wms_supports_sn"), "支持"),
        );
        assert!(s.refusal_for(&a).is_none(), "service {n}");
    }
}

#[test]
fn service_8_implementation_staff_only() {
    let c = load();
    let s = service(&c, 8);
    assert_eq!(s.applicant, ApplicantRule::ImplementationStaff);
    let mut a = Answers::new();
    a.insert(key("requester_is_implementer"), FieldValue::Bool(false));
    assert!(s.refusal_for(&a).expect("refused").message.contains("实施"));
}

// ---------- preconditions, warnings, notes ----------

#[test]
fn preconditions_and_warnings_are_encoded() {
    let c = load();
    for n in [5, 47, 18, 24, 11] {
        assert!(
            !service(&c, n).preconditions.is_empty(),
            "preconditions of {n}"
        );
    }
    assert_eq!(service(&c, 24).preconditions.len(), 4);
    for (n, word) in [
        (7, "无法撤回"),
        (20, "运单号"),
        (49, "解密"),
        (65, "严格"),
        (70, "0"),
        (12, "300"),
        (14, "之前的单据"),
        (17, "不准确"),
        (22, "导出"),
        (41, "50"),
        (40, "业务类型"),
        (89, "buyer_name"),
    ] {
        let w = service(&c, n).warnings.join(" ");
        assert!(
            w.contains(word),
            "warning of {n} should mention {word}: {w}"
        );
    }
    for n in [15, 37, 25, 32, 66, 67, 80, 83] {
        let s = service(&c, n);
        assert!(!s.notes.is_empty() || !s.warnings.is_empty(), "info of {n}");
    }
    // Every service keeps a non-empty seed_notes when the seed had notes.
    assert!(service(&c, 49).seed_notes.contains("当当网"));
}

// ---------- value types ----------

#[test]
fn secret_is_masked_to_last_four() {
    let c = load();
    let f = field(service(&c, 3), "api_secret");
    assert!(f.spec.sensitive);
    let v = ok(f, "Zx9sk8d7f6g5abcd");
    assert_eq!(f.spec.display_value(&v), "****abcd");
    assert!(!field(service(&c, 3), "api_account").spec.sensitive);
}

#[test]
fn text_email_account_choice_list_money_attachment() {
    let c = load();
    let s4 = service(&c, 4);
    assert!(rejected(field(s4, "reason"), "太短").contains("至少 4 个字"));
    assert!(rejected(field(s4, "customer_email"), "not-an-email").contains("ops@example.com"));
    assert_eq!(
        ok(field(s4, "charged_amount"), "1,200.50"),
        FieldValue::Money { cents: 120_050 }
    );
    assert_eq!(
        ok(field(s4, "charged_amount"), "1200元"),
        FieldValue::Money { cents: 120_000 }
    );
    let account = field(s4, "seller_account");
    assert_eq!(
        ok(account, "  某某旗舰店 "),
        FieldValue::Text("某某旗舰店".into())
    );
    assert!(rejected(account, "a b").contains("不含空格"));
    assert!(rejected(account, "x").contains("2-64"));

    let s49 = service(&c, 49);
    let p = field(s49, "plaintext_platforms");
    let both = FieldValue::Choices(vec!["淘宝".into(), "京东".into()]);
    assert_eq!(ok(p, "淘宝、京东"), both);
    assert_eq!(ok(p, "1,3"), both);
    assert_eq!(ok(p, "3 1"), both);
    assert!(rejected(p, "亚马逊").contains("当当网"));

    let ids = field(service(&c, 72), "original_order_ids");
    assert_eq!(
        ok(ids, "123456, 234567\n345678、123456"),
        FieldValue::IdList(vec!["123456".into(), "234567".into(), "345678".into()])
    );
    assert!(rejected(ids, " , ").contains("至少一个"));

    let d = field(service(&c, 21), "disclaimer");
    assert!(rejected(d, "我稍后发").contains("免责声明填写样板.docx"));

    let yn = field(service(&c, 43), "impl_closed");
    assert_eq!(ok(yn, "y"), FieldValue::Bool(true));
    assert_eq!(ok(yn, "0"), FieldValue::Bool(false));
    assert!(rejected(yn, "也许").contains("是"));
}

#[test]
fn prompts_come_from_the_wording_file() {
    let c = load();
    let f = field(service(&c, 33), "seller_account");
    let p = f.spec.render_prompt();
    assert!(p.contains("卖家账号") && p.contains("wdt_shop01"), "{p}");
    assert_eq!(
        c.messages().get(kaitong::catalog::MessageKey::Busy),
        "系统繁忙,请稍后再试"
    );
    let receipt = c.messages().render(
        kaitong::catalog::MessageKey::FiledReceipt,
        &[("id", "33"), ("name", "赠品策略上限调整")],
    );
    assert!(receipt.contains("#33 赠品策略上限调整"));
}

#[test]
fn answers_roundtrip_as_json() {
    let mut a = Answers::new();
    a.insert(key("adjusted_amount"), FieldValue::Integer(3000));
    a.insert(key("open_duration"), FieldValue::DurationHours(48));
    let json = serde_json::to_string(&a).expect("serialise");
    let back: Answers = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(a, back);
}

// ---------- broken catalogs ----------

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

fn temp_catalog() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dialogs");
    copy_dir(&dialogs(), &dir);
    (tmp, dir)
}

/// Replaces the first `from` in `file` with `to`; returns the 1-based line
/// where the replacement starts.
fn edit(dir: &Path, file: &str, from: &str, to: &str) -> usize {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} in {file}"));
    let line = text[..at].matches('\n').count() + 1;
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    line
}

fn expect_error(dir: &Path, file: &str, line: usize, reason: &str) {
    match Catalog::load(dir) {
        Ok(_) => panic!("broken catalog accepted ({reason})"),
        Err(e) => {
            assert!(e.file().ends_with(file), "file of {e}");
            assert_eq!(e.line(), Some(line), "line of {e}");
            assert!(e.to_string().contains(reason), "reason of {e}");
            assert!(matches!(e, CatalogError::Invalid { .. }));
        }
    }
}

#[test]
fn rejects_duplicate_ids() {
    let (_t, dir) = temp_catalog();
    std::fs::copy(dir.join("services/033.toml"), dir.join("services/999.toml")).expect("copy");
    expect_error(&dir, "services/999.toml", 2, "duplicate service id 33");
}

#[test]
fn rejects_unknown_field_reference() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "services/033.toml",
        "key = \"reason\"",
        "key = \"reasn\"",
    );
    expect_error(&dir, "services/033.toml", line, "unknown field `reasn`");
}

#[test]
fn rejects_empty_choice_list() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "fields.toml",
        "options = [\"正式环境\", \"联调环境\", \"联调测试\"]",
        "options = []",
    );
    expect_error(&dir, "fields.toml", line, "empty choice list");
}

#[test]
fn rejects_bad_regex() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "fields.toml",
        "pattern = \"^[A-Za-z0-9_\\\\-]{1,32}$\"",
        "pattern = \"^[A-Z\"",
    );
    expect_error(&dir, "fields.toml", line, "bad regex");
}

#[test]
fn rejects_default_outside_cap() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "services/059.toml",
        "default = 10000",
        "default = 40000",
    );
    expect_error(
        &dir,
        "services/059.toml",
        line,
        "default 40000 is outside the cap",
    );
}

#[test]
fn rejects_when_on_unknown_field() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "services/043.toml",
        "when = { field = \"impl_closed\"",
        "when = { field = \"impl_closd\"",
    );
    expect_error(
        &dir,
        "services/043.toml",
        line,
        "unknown or later field `impl_closd`",
    );
}

#[test]
fn rejects_when_on_later_field() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "services/003.toml",
        "when = { field = \"api_env\", equals = \"正式环境\" }",
        "when = { field = \"reason\", equals = \"x\" }",
    );
    expect_error(
        &dir,
        "services/003.toml",
        line,
        "unknown or later field `reason`",
    );
}

#[test]
fn rejects_when_with_invalid_choice_value() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "services/003.toml",
        "equals = \"正式环境\"",
        "equals = \"生产环境\"",
    );
    expect_error(
        &dir,
        "services/003.toml",
        line,
        "`生产环境` is not an option",
    );
}

#[test]
fn rejects_unknown_keys_and_syntax_errors() {
    let (_t, dir) = temp_catalog();
    let line = edit(
        &dir,
        "services/033.toml",
        "category = ",
        "colour = \"red\"\ncategory = ",
    );
    expect_error(&dir, "services/033.toml", line, "colour");
    let (_t2, dir2) = temp_catalog();
    let line2 = edit(&dir2, "services/012.toml", "name = ", "name = = ");
    expect_error(&dir2, "services/012.toml", line2, "");
}

#[test]
fn rejects_missing_message_key_and_asymmetric_related() {
    let (_t, dir) = temp_catalog();
    edit(&dir, "messages.toml", "busy = ", "busy_typo = ");
    expect_error(&dir, "messages.toml", 1, "required message key `busy`");
    let (_t2, dir2) = temp_catalog();
    let line = edit(
        &dir2,
        "services/048.toml",
        "related = [77]",
        "related = [77, 12]",
    );
    expect_error(&dir2, "services/048.toml", line, "does not list 48 back");
}

// ---------- reload ----------

#[test]
fn reload_keeps_old_catalog_on_bad_file() {
    let (_t, dir) = temp_catalog();
    let handle = CatalogHandle::load(&dir).expect("initial load");
    let before = handle.current();
    edit(
        &dir,
        "services/033.toml",
        "key = \"reason\"",
        "key = \"nope\"",
    );
    assert!(handle.reload().is_err());
    let still = handle.current();
    assert!(std::sync::Arc::ptr_eq(&before, &still), "old catalog kept");
    assert_eq!(still.service_count(), 90);
    // Fixing the file and reloading picks up the change.
    edit(
        &dir,
        "services/033.toml",
        "key = \"nope\"",
        "key = \"reason\"",
    );
    edit(
        &dir,
        "services/033.toml",
        "name = \"赠品策略上限调整\"",
        "name = \"赠品策略上限\"",
    );
    handle.reload().expect("valid again");
    assert_eq!(service(&handle.current(), 33).name, "赠品策略上限");
    // Snapshots taken earlier are unaffected.
    assert_eq!(service(&before, 33).name, "赠品策略上限调整");
}
