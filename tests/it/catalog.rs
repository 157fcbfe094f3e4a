//! The real catalog in `dialogs/` against the seed
//! (`tests/fixtures/seed.txt`): every row's number, name and listed
//! information is present, and the notes column is kept verbatim. The seed
//! is parsed here; there is no hand-kept copy of the expected answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kaitong::catalog::{Catalog, FilingRoute, Team, Window, render_list, render_show};
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

/// Where the 申请渠道 column starts inside a row (the fields column ends).
const CHANNEL_MARKERS: &[&str] = &[
    "委外仓库提OA工单",
    "提OA工单",
    "资源管理系统",
    "邮件申请",
    "授权之后",
    "正式环境开放平台",
];
/// Channel and team words that may precede the notes column.
const CHANNEL_TEAM_TOKENS: &[&str] = &[
    "授权之后资源管理系统申请",
    "委外仓库提OA工单",
    "提OA工单",
    "资源管理系统",
    "邮件申请",
    "产研",
    "职能组",
];

/// Whitespace and punctuation variants removed so layout differences in
/// the seed (line breaks, half/full width commas) do not matter.
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '，' => ',',
            '：' => ':',
            '（' => '(',
            '）' => ')',
            '；' => ';',
            c => c,
        })
        .collect()
}

/// One seed row: its number and the text after the number (the same reading the audit uses).
fn seed_rows() -> BTreeMap<u16, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed.txt");
    let text = std::fs::read_to_string(path).expect("seed fixture readable");
    kaitong::catalog::audit::seed_rows(&text)
}

/// Byte index in `text` just after `prefix`, comparing without whitespace.
fn strip_prefix_loose(text: &str, prefix: &str) -> Option<usize> {
    let mut want = prefix.chars().filter(|c| !c.is_whitespace()).peekable();
    for (i, c) in text.char_indices() {
        if want.peek().is_none() {
            return Some(i);
        }
        if c.is_whitespace() {
            continue;
        }
        if Some(c) != want.next() {
            return None;
        }
    }
    want.peek().is_none().then_some(text.len())
}

#[test]
fn real_catalog_loads_all_90() {
    let c = load();
    assert_eq!(c.service_count(), 90);
    let ids: Vec<u16> = c.services().map(|s| s.id.get()).collect();
    assert_eq!(
        ids,
        (1..=90).collect::<Vec<_>>(),
        "ids in order, none missing"
    );
    assert!(c.summary_line().starts_with("catalog OK: 90 services, "));
}

#[test]
fn every_seed_row_name_fields_and_notes_are_in_the_catalog() {
    let c = load();
    let rows = seed_rows();
    assert_eq!(rows.len(), 90, "seed has 90 rows");
    for (n, row) in &rows {
        let s = c
            .service(ServiceId(*n))
            .unwrap_or_else(|| panic!("service {n} missing"));
        // Name: the row starts with the seed name.
        let after_name = strip_prefix_loose(row, &s.seed_name).unwrap_or_else(|| {
            panic!(
                "row {n}: seed_name {:?} does not start the row",
                s.seed_name
            )
        });
        let rest = &row[after_name..];
        // Fields column: up to the first channel marker.
        let end = CHANNEL_MARKERS
            .iter()
            .filter_map(|m| rest.find(m))
            .min()
            .unwrap_or_else(|| panic!("row {n}: no channel column found"));
        let labels: Vec<String> = s.fields.iter().map(|f| norm(&f.spec.label)).collect();
        let mut texts = String::new();
        for t in s.notes.iter().chain(s.guidance.iter().map(|g| &g.message)) {
            texts.push_str(&norm(t));
        }
        for token in rest[..end]
            .split(|ch: char| ch.is_whitespace() || ch == '、')
            .filter(|t| !t.is_empty())
        {
            let t = norm(token);
            assert!(
                labels.contains(&t) || texts.contains(&t),
                "row {n}: seed info {token:?} not found among fields {labels:?}"
            );
        }
        // Notes column: verbatim in seed_notes; only channel/team words may
        // precede it in the row.
        let tail = norm(&rest[end..]);
        let notes = norm(&s.seed_notes);
        assert!(
            tail.ends_with(&notes),
            "row {n}: seed_notes is not the end of the row"
        );
        let mut head = tail[..tail.len() - notes.len()].to_owned();
        for tok in CHANNEL_TEAM_TOKENS {
            head = head.replacen(tok, "", 1);
        }
        assert!(
            head.is_empty(),
            "row {n}: text {head:?} is lost (not in seed_notes)"
        );
    }
}

#[test]
fn teams_channels_and_windows_follow_the_seed() {
    let c = load();
    let get = |n: u16| c.service(ServiceId(n)).expect("service exists");
    assert_eq!(
        get(4).route,
        FilingRoute::Email {
            address: Some("qijianbanzengzhi@wangdian.cn".into())
        }
    );
    assert_eq!(get(1).route, FilingRoute::OaTicket);
    assert_eq!(get(2).team, Team::Ops);
    assert_eq!(get(3).window, Window::Custom("1~3 个工作日".into()));
    assert_eq!(get(7).team, Team::Functional);
    assert_eq!(get(9).team, Team::Rnd);
    assert_eq!(get(33).window, Window::DailyBatch);
    assert_eq!(get(33).route, FilingRoute::ResourcePlatform);
}

#[test]
fn related_pairs_are_symmetric_and_cover_the_near_duplicates() {
    let c = load();
    for s in c.services() {
        for r in &s.related {
            let other = c.service(*r).expect("related exists");
            assert!(
                other.related.contains(&s.id),
                "{} -> {} not mirrored",
                s.id,
                r
            );
        }
    }
    for (a, b) in [
        (5, 47),
        (15, 37),
        (37, 90),
        (15, 90),
        (6, 64),
        (48, 77),
        (35, 36),
        (55, 85),
        (24, 25),
    ] {
        let sa = c.service(ServiceId(a)).expect("exists");
        assert!(
            sa.related.contains(&ServiceId(b)),
            "{a} should relate to {b}"
        );
    }
}

#[test]
fn aliases_cover_what_salespeople_type() {
    let c = load();
    let find = |word: &str| -> Vec<u16> {
        let w = word.to_lowercase();
        c.services()
            .filter(|s| {
                s.aliases
                    .iter()
                    .chain(&s.keywords)
                    .any(|a| a.to_lowercase().contains(&w))
            })
            .map(|s| s.id.get())
            .collect()
    };
    for (word, id) in [
        ("admin", 21),
        ("管理员", 21),
        ("开票", 7),
        ("发票", 7),
        ("fapiao", 7),
        ("解绑", 23),
        ("取消绑定", 23),
        ("明文", 49),
        ("不加密", 22),
        ("单量", 1),
        ("充值", 1),
    ] {
        assert!(find(word).contains(&id), "{word} should find {id}");
    }
}

#[test]
fn cli_renderers_cover_everything() {
    let c = load();
    let list = render_list(&c);
    for s in c.services() {
        assert!(list.contains(&s.name), "list misses {}", s.name);
    }
    assert!(list.contains("【上限调整】"));
    let show = render_show(&c, ServiceId(3)).expect("3 exists");
    for part in [
        "运维",
        "OA 工单",
        "1~3 个工作日",
        "接口密钥",
        "敏感",
        "指引(不提交)",
        "联调环境",
    ] {
        assert!(show.contains(part), "show 3 misses {part}:\n{show}");
    }
    let show23 = render_show(&c, ServiceId(23)).expect("23 exists");
    assert!(show23.contains("拒绝"));
    let show5 = render_show(&c, ServiceId(5)).expect("5 exists");
    assert!(show5.contains("前置条件") && show5.contains("#47"));
    let show33 = render_show(&c, ServiceId(33)).expect("33 exists");
    assert!(show33.contains("上限 3000"), "{show33}");
    assert!(render_show(&c, ServiceId(999)).is_none());
}

#[test]
fn summary_masks_secrets() {
    use kaitong::catalog::{Answers, FieldKey, FieldValue};
    let c = load();
    let s = c.service(ServiceId(3)).expect("3");
    let mut a = Answers::new();
    let k = |x: &str| FieldKey::parse(x).expect("key");
    a.insert(k("api_env"), FieldValue::Choice("正式环境".into()));
    a.insert(k("api_secret"), FieldValue::Text("s3cr3tvalueWXYZ".into()));
    let lines = s.summary_lines(&a);
    assert!(
        lines.contains(&("接口密钥".to_owned(), "****WXYZ".to_owned())),
        "{lines:?}"
    );
    assert!(!format!("{lines:?}").contains("s3cr3t"));
}
