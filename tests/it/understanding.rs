//! Understanding measured on the labelled evaluation set, and the `understand`/`eval` commands.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use kaitong::catalog::Catalog;
use kaitong::dialog::understand::Matcher;
use kaitong::dialog::understand::Tuning;
use kaitong_dev::eval::{evaluate, parse};

fn matcher() -> (Catalog, Matcher) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let catalog = Catalog::load(&dir).unwrap();
    let matcher = Matcher::new(&catalog, Tuning::load(&dir).unwrap());
    (catalog, matcher)
}

fn eval_set() -> Vec<kaitong_dev::eval::Labelled> {
    parse(include_str!("../fixtures/understanding_eval.jsonl")).unwrap()
}

#[test]
fn the_evaluation_set_covers_every_service_at_least_four_times() {
    let (catalog, _) = matcher();
    let set = eval_set();
    assert!(set.len() >= 400, "{}", set.len());
    for service in catalog.services() {
        let n = set
            .iter()
            .filter(|l| l.service == Some(service.id.get()))
            .count();
        assert!(n >= 4, "service #{} has {n} lines", service.id);
    }
    assert!(set.iter().filter(|l| l.service.is_none()).count() >= 50);
}

/// Pins the accuracy reached when tuning (see the closing note); a drop fails the build.
#[test]
fn top1_accuracy_and_none_detection_stay_at_the_measured_level() {
    let (_, matcher) = matcher();
    let report = evaluate(&matcher, &eval_set());
    assert!(
        report.top1_accuracy >= 0.91,
        "top-1 {:.3}",
        report.top1_accuracy
    );
    assert!(
        report.offered_accuracy >= 0.94,
        "offered {:.3}",
        report.offered_accuracy
    );
    assert!(
        report.none_accuracy >= 0.90,
        "none {:.3}",
        report.none_accuracy
    );
}

#[test]
fn typos_homophones_pinyin_and_full_width_find_the_service() {
    let (_, matcher) = matcher();
    for text in [
        "开个电子发漂",
        "fapiao",
        "ＡＢＣ１２３ 电子发票",
        "@开通助手 麻烦开下电子发票哈",
    ] {
        let top = matcher.rank(text).first().map(|s| s.id.get());
        assert_eq!(top, Some(7), "{text}");
    }
}

fn slot_set() -> Vec<kaitong_dev::eval::Labelled> {
    parse(include_str!("../fixtures/slots_eval.jsonl")).unwrap()
}

#[test]
fn the_slot_set_covers_every_class_of_defect_and_many_services() {
    let set = slot_set();
    assert!(set.len() >= 300, "{}", set.len());
    let services: std::collections::BTreeSet<u16> = set.iter().filter_map(|l| l.service).collect();
    assert!(services.len() >= 45, "{}", services.len());
    for class in [
        "cued_account",
        "shape_account",
        "not_account",
        "no_cue_chinese",
        "over_cap",
        "at_or_below_default",
        "number_phrase",
        "multi_choice",
        "all_options",
        "yes_no",
        "multiple_accounts",
        "invisible_chars",
        "nothing",
    ] {
        assert!(
            set.iter().any(|l| l.class.as_deref() == Some(class)),
            "no line of class {class}"
        );
    }
}

/// The exact metric: every expected value found and nothing else extracted (pinned at the
/// level measured in the closing note of issue 10).
#[test]
fn slot_extraction_is_exact_on_the_labelled_set() {
    let (catalog, matcher) = matcher();
    let report = kaitong_dev::eval::evaluate_slots(&catalog, &matcher.tuning().slots, &slot_set());
    assert!(
        report.exact_ratio >= 0.99,
        "exact {:.3}; misses: {:#?}",
        report.exact_ratio,
        report.misses
    );
    assert!(
        report.fully_answered_ratio >= 0.98,
        "noticed and extra accounts {:.3}",
        report.fully_answered_ratio
    );
}

mod slot_properties {
    use super::*;
    use kaitong::catalog::value::normalize_width;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    use crate::harness;

    static PARTS: LazyLock<(Catalog, Matcher)> = LazyLock::new(matcher);

    /// Pieces salespeople's messages are made of: catalog phrases, option words, cue words,
    /// filler, numbers and random identifiers.
    fn piece(service: u16) -> impl Strategy<Value = String> {
        let (catalog, _) = &*PARTS;
        let s = catalog
            .service(kaitong::domain::ServiceId(service))
            .unwrap();
        let mut phrases: Vec<String> = vec![s.name.clone()];
        phrases.extend(s.aliases.iter().cloned());
        for f in &s.fields {
            phrases.push(f.spec.label.clone());
            phrases.extend(f.spec.cues.iter().cloned());
            if let kaitong::catalog::FieldKind::SingleChoice { options }
            | kaitong::catalog::FieldKind::MultiChoice { options } = &f.spec.kind
            {
                phrases.extend(options.iter().cloned());
            }
        }
        for w in [
            "帮忙",
            "客户",
            "麻烦",
            "一下",
            "开",
            "给",
            "帮",
            "调到",
            "吧",
            "了",
            "和",
            "账号",
            "是",
            "：",
            "，",
            " ",
            "\n",
            "\u{200B}",
            "没有",
            "都要",
            "已经",
            "续费",
            "万",
            "w",
            "台",
            "天",
            "小时",
            "不对",
            "哦不",
            "打错了",
            "都是",
            "单",
        ] {
            phrases.push(w.to_owned());
        }
        prop_oneof![
            3 => proptest::sample::select(phrases),
            1 => "[a-z]{1,5}[_.-]?[a-z0-9]{0,6}",
            1 => "[0-9]{1,6}",
            1 => "[一二三四五六七八九十百千万]{1,4}",
            1 => "[A-Z]{2,3}[0-9]{2,4}",
            1 => "[a-z0-9._]{1,8}@[a-z]{2,6}\\.(com|cn)",
        ]
    }

    fn message() -> impl Strategy<Value = (u16, String)> {
        (1u16..=90).prop_flat_map(|id| {
            (
                Just(id),
                proptest::collection::vec(piece(id), 1..9).prop_map(|p| p.concat()),
            )
        })
    }

    proptest! {
        #![proptest_config(harness::proptest_config(400))]

        /// Every value the bot reports occurs in the message and satisfies its field's parser.
        #[test]
        fn every_reported_value_is_in_the_message_and_valid((id, text) in message()) {
            let (catalog, matcher) = &*PARTS;
            let service = catalog.service(kaitong::domain::ServiceId(id)).unwrap();
            let found = kaitong::dialog::slots::extract(catalog, service, &matcher.tuning().slots, &text);
            let normalised = normalize_width(&text).to_lowercase();
            for (key, value) in &found.answers {
                let source = found.sources.get(key);
                prop_assert!(source.is_some(), "{key} has no source in {text:?}");
                let source = source.unwrap().to_lowercase();
                prop_assert!(normalised.contains(&source), "{key}={source:?} not in {text:?}");
                let field = service.field(key).unwrap();
                let reparsed = field.spec.parse_answer(&value.display(false)).ok();
                prop_assert_eq!(
                    reparsed.as_ref(),
                    Some(value),
                    "{}={:?} from {:?}", key, value, text
                );
            }
            for account in &found.extra_accounts {
                prop_assert!(normalised.contains(&account.to_lowercase()), "{account} not in {text:?}");
            }
            // Values asked about (never filled) hold to the same contract.
            for unsure in &found.unsure {
                prop_assert!(!found.answers.contains_key(&unsure.key), "{} both filled and unsure", unsure.key);
                prop_assert!(normalised.contains(&unsure.raw.to_lowercase()), "{:?} not in {text:?}", unsure.raw);
                let field = service.field(&unsure.key).unwrap();
                let reparsed = field.spec.parse_answer(&unsure.raw).ok();
                prop_assert_eq!(reparsed.as_ref(), Some(&unsure.value));
            }
        }
    }
}

/// The in-process default (the distilled table under `dialogs/embeddings/`): pinned at the
/// figures in BENCHMARKS.md, on the paraphrases and on the lines that use the catalog's words.
#[test]
fn figures_with_the_default_table_stay_at_the_measured_level() {
    use kaitong::dialog::meaning::Space;
    let (catalog, matcher) = matcher();
    let settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let encoder = kaitong::startup::static_encoder(&settings).expect("the committed table loads");
    let space = Space::encode(&catalog, encoder.as_ref());
    for (set, top1, offered, none) in [
        (
            parse(include_str!("../fixtures/paraphrase_eval.jsonl")).unwrap(),
            0.65,
            0.77,
            0.78,
        ),
        (eval_set(), 0.97, 0.97, 0.81),
    ] {
        let queries: Vec<_> = set
            .iter()
            .map(|l| encoder.encode_message(&l.text))
            .collect();
        let report = kaitong_dev::eval::evaluate_meaning(&matcher, &space, &queries, &set);
        let lexical = evaluate(&matcher, &set);
        assert!(
            report.top1_accuracy >= top1,
            "top-1 {:.3}",
            report.top1_accuracy
        );
        assert!(
            report.offered_accuracy >= offered,
            "offered {:.3}",
            report.offered_accuracy
        );
        assert!(
            report.none_accuracy >= none,
            "none {:.3}",
            report.none_accuracy
        );
        assert!(
            report.top1_accuracy >= lexical.top1_accuracy,
            "meaning adds to words"
        );
    }
}

/// The independent wording set (`tests/fixtures/wording_eval.README.md`), scored as `kaitong-dev eval`
/// does with the in-process default: floors just below the measured five columns on each half
/// (dev tuned on, test never), and a ceiling on the costly error, a service taken without asking
/// that nobody asked for.
#[test]
fn the_wording_set_stays_at_the_measured_level() {
    use kaitong::dialog::meaning::Space;
    let (catalog, matcher) = matcher();
    let settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let encoder = kaitong::startup::static_encoder(&settings).expect("the committed table loads");
    let space = Space::encode(&catalog, encoder.as_ref());
    // (half, top-1, offered, taken right, taken wrong at most, out of scope, acts)
    for (half, text, top1, offered, taken, wrong, none, acts) in [
        (
            "dev",
            include_str!("../fixtures/wording_eval_dev.jsonl"),
            0.90,
            0.91,
            0.70,
            0.01,
            0.83,
            0.76,
        ),
        (
            "test",
            include_str!("../fixtures/wording_eval_test.jsonl"),
            0.88,
            0.91,
            0.67,
            0.02,
            0.79,
            0.41,
        ),
    ] {
        let set = parse(text).unwrap();
        let queries: Vec<_> = set
            .iter()
            .map(|l| encoder.encode_message(&l.text))
            .collect();
        let r = kaitong_dev::eval::evaluate_meaning(&matcher, &space, &queries, &set);
        let shown = format!(
            "{half}: top-1 {:.3} offered {:.3} taken {:.3} wrong {:.3} none {:.3} acts {:.3}",
            r.top1_accuracy,
            r.offered_accuracy,
            r.taken_right_ratio,
            r.taken_wrong_ratio,
            r.none_accuracy,
            r.act_accuracy
        );
        assert!(
            r.in_scope > 250 && r.out_of_scope > 40 && r.acts > 15,
            "{shown}"
        );
        assert!(r.top1_accuracy >= top1, "{shown}");
        assert!(r.offered_accuracy >= offered, "{shown}");
        assert!(r.taken_right_ratio >= taken, "{shown}");
        assert!(r.taken_wrong_ratio <= wrong, "{shown}");
        assert!(r.none_accuracy >= none, "{shown}");
        assert!(r.act_accuracy >= acts, "{shown}");
        // Acts read from examples never take a request away from the form it asks for.
        assert_eq!(r.requests_read_as_acts, 0, "{shown}");
    }
}

/// `kaitong-dev train` is deterministic: retraining on the committed catalog, table and training
/// file gives the committed weights byte for byte.
#[test]
fn retraining_reproduces_the_shipped_weights() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let encoder = kaitong::startup::static_encoder(&settings).expect("the committed table loads");
    let trained = kaitong_dev::train::train(&dir, encoder.as_ref()).unwrap();
    let shipped = std::fs::read_to_string(dir.join(kaitong_dev::train::WEIGHTS)).unwrap();
    assert_eq!(
        trained, shipped,
        "run `kaitong-dev train` and commit the weights"
    );
}

/// A one-character cue fires only as a word: 提 in 提交 and 开 in 开通 ask for nothing, and
/// the verb after a how-word is what is asked about.
#[test]
fn cue_characters_inside_other_words_do_not_make_a_request() {
    let (_, matcher) = matcher();
    for question in [
        "盘点单提交以后在哪里审核",
        "开通以后在哪里看报表",
        "怎么调大发货单的字体",
        "如何申请年假",
    ] {
        assert!(matcher.asks_how(question), "{question}");
    }
    for request in [
        "帮我开个电子发票吗",
        "在哪里都行 麻烦帮忙申请一下",
        "提一下物流追踪 在哪看进度",
    ] {
        assert!(!matcher.asks_how(request), "{request}");
    }
}

#[test]
fn a_short_label_names_the_services_own_field_and_a_negated_option_is_left_out() {
    // "平台" is also another service's label: here it shortens 需要开通的平台. "不是dy" takes
    // 抖店 out of the list said before it.
    let (catalog, matcher) = matcher();
    let service = catalog
        .service(kaitong::domain::ServiceId(49))
        .expect("#49");
    let words = &matcher.tuning().slots;
    for (text, meant) in [
        ("发货单明文打印 平台 ks", "快手"),
        ("发货单明文打印 平台：jd", "京东"),
        ("发货单明文打印 平台jd和dy 客户要看地址", "京东、抖店"),
        ("发货单明文打印 平台是jd ks 不是dy", "京东、快手"),
        ("发货单明文打印 开淘宝 不要快手", "淘宝"),
    ] {
        let found = kaitong::dialog::slots::extract(&catalog, service, words, text);
        let got: Vec<String> = found.answers.values().map(|v| v.display(false)).collect();
        assert_eq!(got, vec![meant.to_owned()], "{text}");
    }
}
