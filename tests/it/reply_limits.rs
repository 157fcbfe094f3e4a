//! What the person sees is never cut where it matters. Every reply kind — plain text, questions
//! with 1..=6 and more options, long questions, long option names, names sharing a long prefix,
//! twins, yes/no, summaries, handler cards, relabels — at, below and above each WeCom limit, is
//! rendered by the channel code (`channel::cards`, then the real server on both channels) and
//! checked: every line the reply says is whole in one thing the person sees (a text message,
//! a card's title, its grey line or the text under it), the question included; every option is
//! reachable by a button whose text is its name or its number, the numbered name then being in
//! view; no two buttons read the same; every text and field is within its limit.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kaitong::catalog::{Answers, CatalogHandle, FilingRoute, MessageKey, Team, Window};
use kaitong::channel::cards::{handled_label, render, render_update};
use kaitong::domain::{
    Bot, ChannelKind, ChoiceOption, Conversation, Inbound, Reply, RequestId, ServiceId, UserId,
};
use kaitong::requests::{BatchDay, FiledForm, Request, Requester, Status};
use kaitong::startup::Application;
use kaitong::wecom::TEXT_LIMIT_BYTES;
use kaitong::wecom::aibot_json::STREAM_LIMIT_BYTES;
use kaitong::wecom::cards::{
    BUTTON_TEXT_CHARS, JUMP_TITLE_CHARS, KEYNAME_CHARS, MAX_BUTTONS, MAX_FIELDS,
    REPLACE_NAME_CHARS, SOURCE_DESC_CHARS, SUB_TITLE_CHARS, TITLE_CHARS, TITLE_DESC_CHARS,
    VALUE_CHARS,
};
use kaitong_dev::simulator::SimulatorHandle;
use proptest::prelude::*;
use serde_json::Value;

use crate::harness::{self, Backend, TestApp};

/// What one reply put in front of the person, in order: text messages and cards (as JSON).
#[derive(Debug, Default)]
struct Seen {
    texts: Vec<String>,
    cards: Vec<Value>,
}

impl Seen {
    fn of(rendered: &kaitong::channel::cards::Rendered) -> Self {
        Self {
            texts: rendered.texts.clone(),
            cards: rendered
                .card
                .iter()
                .map(|c| serde_json::to_value(c).unwrap())
                .collect(),
        }
    }

    /// Every unit a person reads on its own: each text message, each card's title, grey line
    /// and text below.
    fn units(&self) -> Vec<String> {
        let mut units = self.texts.clone();
        for card in &self.cards {
            for field in [
                &card["main_title"]["title"],
                &card["main_title"]["desc"],
                &card["sub_title_text"],
            ] {
                if let Some(text) = field.as_str() {
                    units.push(text.to_owned());
                }
            }
        }
        units
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Every field of a card within WeCom's limits, and no two buttons reading the same.
fn check_card(card: &Value) {
    let within = |field: &Value, max: usize, name: &str| {
        if let Some(text) = field.as_str() {
            assert!(chars(text) <= max, "{name} over {max}: {text:?} in {card}");
        }
    };
    within(&card["source"]["desc"], SOURCE_DESC_CHARS, "source.desc");
    within(&card["main_title"]["title"], TITLE_CHARS, "title");
    within(&card["main_title"]["desc"], TITLE_DESC_CHARS, "title desc");
    within(&card["sub_title_text"], SUB_TITLE_CHARS, "sub_title_text");
    if let Some(rows) = card["horizontal_content_list"].as_array() {
        assert!(rows.len() <= MAX_FIELDS, "{card}");
        for row in rows {
            within(&row["keyname"], KEYNAME_CHARS, "keyname");
            within(&row["value"], VALUE_CHARS, "value");
        }
    }
    for jump in card["jump_list"].as_array().into_iter().flatten() {
        within(&jump["title"], JUMP_TITLE_CHARS, "jump title");
    }
    let texts: Vec<&str> = card["button_list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert!(texts.len() <= MAX_BUTTONS, "{card}");
    for (i, text) in texts.iter().enumerate() {
        assert!(!text.trim().is_empty(), "an empty button: {card}");
        assert!(
            chars(text) <= BUTTON_TEXT_CHARS,
            "button over limit: {card}"
        );
        assert!(
            !texts[..i].contains(text),
            "two buttons read {text:?}: {card}"
        );
    }
}

/// The pieces of a line that end after one of `marks`.
fn pieces(line: &str, marks: &[char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in line.chars() {
        current.push(c);
        if marks.contains(&c) {
            out.push(std::mem::take(&mut current));
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

const SENTENCE_ENDS: &[char] = &['。', '！', '？', '!', '?', '；', ';'];
const PAUSES: &[char] = &['，', ',', '、', '：', ':'];

/// A short view of what was seen, for failure messages.
fn outline(seen: &Seen) -> String {
    let texts: Vec<String> = seen
        .texts
        .iter()
        .map(|t| {
            format!(
                "{} bytes: {}…",
                t.len(),
                t.chars().take(20).collect::<String>()
            )
        })
        .collect();
    format!("texts {texts:?}, cards {:?}", seen.cards)
}

/// The checks on what a reply showed: limits, whole lines, the question, reachable options.
fn check(reply: &Reply, seen: &Seen, text_limit: usize) {
    for text in &seen.texts {
        assert!(
            !text.trim().is_empty(),
            "an empty message: {}",
            outline(seen)
        );
        assert!(
            text.len() <= text_limit,
            "a message over {text_limit} bytes"
        );
    }
    for card in &seen.cards {
        check_card(card);
    }
    let units = seen.units();
    let whole = |piece: &str| units.iter().any(|u| u.contains(piece));
    let text = match reply {
        Reply::Nothing => return,
        Reply::Text(text) | Reply::Choices { text, .. } => text,
    };
    // A line that fits a message is whole in one place; a longer one is cut between
    // sentences, and a sentence longer than a message between its clauses.
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.len() <= text_limit {
            assert!(whole(line), "line not whole: {line:?}\n{}", outline(seen));
            continue;
        }
        for sentence in pieces(line, SENTENCE_ENDS) {
            if sentence.len() <= text_limit {
                assert!(
                    whole(&sentence),
                    "sentence cut: {sentence:?}\n{}",
                    outline(seen)
                );
                continue;
            }
            for clause in pieces(&sentence, PAUSES) {
                if clause.len() <= text_limit {
                    assert!(whole(&clause), "clause cut: {clause:?}\n{}", outline(seen));
                }
            }
        }
    }
    let Reply::Choices { options, .. } = reply else {
        return;
    };
    let numbered = |i: usize, o: &ChoiceOption| whole(&format!("{}. {}", i + 1, o.label));
    let buttons: Vec<&Value> = seen
        .cards
        .iter()
        .filter_map(|c| c["button_list"].as_array())
        .flatten()
        .collect();
    if buttons.is_empty() {
        for (i, option) in options.iter().enumerate() {
            assert!(
                numbered(i, option),
                "option {i} not in view: {}",
                outline(seen)
            );
        }
        return;
    }
    assert_eq!(buttons.len(), options.len(), "{}", outline(seen));
    for (i, (button, option)) in buttons.iter().zip(options).enumerate() {
        assert_eq!(
            button["key"],
            option.key.as_str(),
            "a button answers its option"
        );
        let text = button["text"].as_str().unwrap();
        if text != option.label.trim() {
            assert_eq!(text, (i + 1).to_string(), "{}", outline(seen));
            assert!(
                numbered(i, option),
                "option {i} behind a number not in view: {}",
                outline(seen)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generated replies through the renderer both channels use.

const ALPHABET: &[char] = &[
    '申', '请', '开', '通', '服', '务', '账', '号', '店', '铺', '订', '单', '报', '表', '客', '户',
];

/// A sentence of `len` characters (its end mark included).
fn sentence(len: usize, seed: u64, end: char) -> String {
    let mut out: String = (0..len.saturating_sub(1))
        .map(|i| ALPHABET[(seed as usize + i * 7) % ALPHABET.len()])
        .collect();
    out.push(end);
    out
}

/// Lengths at, below and above each limit a line can meet: a button (10), a title (26), its
/// grey line (30), the text below a card (112), a text message (2048 bytes = 682 CJK
/// characters, reached by lines of several sentences).
fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(1usize),
        Just(9),
        Just(10),
        Just(11),
        Just(25),
        Just(26),
        Just(27),
        Just(29),
        Just(30),
        Just(31),
        Just(111),
        Just(112),
        Just(113),
        Just(300),
        Just(600),
        1usize..40,
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            length(),
            any::<u64>(),
            prop::sample::select(vec!['。', '，', '!']),
        ),
        1..4,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(len, seed, end)| sentence(len, seed, end))
            .collect()
    })
}

/// A question: paragraphs of context, then the question line and the lines that belong to it.
fn question_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::collection::vec(line(), 1..3), 0..3),
        length(),
        any::<u64>(),
        prop::collection::vec(line(), 0..3),
    )
        .prop_map(|(context, q_len, seed, rest)| {
            let mut paragraphs: Vec<String> = context.into_iter().map(|p| p.join("\n")).collect();
            let mut question = vec![sentence(q_len, seed, '?')];
            question.extend(rest);
            paragraphs.push(question.join("\n"));
            paragraphs.join("\n\n")
        })
}

/// Option names: short and distinct, at/around the button's 10 characters, sharing a long
/// prefix, twins, the handler-named services (#5 / #47 支付宝数据透视).
fn labels() -> impl Strategy<Value = Vec<String>> {
    (1usize..=8, 0usize..6, 8usize..13).prop_map(|(n, kind, len)| {
        (0..n)
            .map(|i| match kind {
                0 => ["是", "否", "切换", "稍后", "继续填", "其他", "淘宝", "京东"][i].to_owned(),
                1 => format!("{}{}", "选".repeat(len - 1), i),
                2 => format!("超期订单预警提醒服务{i}"),
                3 => "同一个名字".to_owned(),
                4 => format!("#{} 职能组{i} 支付宝数据透视", 40 + i),
                _ => format!("#{} {}", 70 + i, "超期订单预警"),
            })
            .collect()
    })
}

fn choices(text: String, labels: Vec<String>) -> Reply {
    Reply::Choices {
        text,
        options: labels
            .into_iter()
            .enumerate()
            .map(|(i, label)| ChoiceOption {
                key: format!("key{i}"),
                label,
            })
            .collect(),
    }
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        prop::collection::vec(line(), 1..12).prop_map(|lines| Reply::Text(lines.join("\n"))),
        (question_text(), labels()).prop_map(|(text, labels)| choices(text, labels)),
    ]
}

proptest! {
    #![proptest_config(harness::proptest_config(400))]

    /// The app channel (2048-byte texts, cards on or off) and the AI bot (20 KB streams).
    #[test]
    fn every_reply_shows_every_line_whole_within_the_limits(
        reply in reply(),
        cards in any::<bool>(),
        aibot in any::<bool>(),
    ) {
        let limit = if aibot { STREAM_LIMIT_BYTES } else { TEXT_LIMIT_BYTES };
        let rendered = render(&reply, "t1", limit, cards);
        check(&reply, &Seen::of(&rendered), limit);
        prop_assert!(rendered.card.is_none() || cards);
    }

    /// A click on an AI-bot card is answered by replacing the card, and what does not fit it
    /// follows as a message.
    #[test]
    fn every_answer_to_a_click_shows_every_line_whole(reply in reply()) {
        let (card, rest) = render_update(&reply, "t1", STREAM_LIMIT_BYTES);
        let seen = Seen {
            texts: rest,
            cards: vec![serde_json::to_value(card).unwrap()],
        };
        check(&reply, &seen, STREAM_LIMIT_BYTES);
    }
}

#[test]
fn a_question_that_fits_is_one_card_and_one_that_does_not_leads_with_text() {
    let fits = choices(
        "这个客户的实施是否已经结项?\n例如: 否".into(),
        vec!["是".into(), "否".into()],
    );
    let rendered = render(&fits, "t", TEXT_LIMIT_BYTES, true);
    assert!(rendered.texts.is_empty());
    check(&fits, &Seen::of(&rendered), TEXT_LIMIT_BYTES);

    // The case: "已识别: …" first, the question after; the question stays in view.
    let context = format!("已识别: {}", "卖家账号 acct_20 ".repeat(12));
    let long = choices(
        format!("{context}\n\n这个客户的实施是否已经结项?"),
        vec!["是".into(), "否".into()],
    );
    let rendered = render(&long, "t", TEXT_LIMIT_BYTES, true);
    assert_eq!(rendered.texts.len(), 1);
    let card = serde_json::to_value(rendered.card.as_ref().unwrap()).unwrap();
    assert_eq!(card["main_title"]["title"], "这个客户的实施是否已经结项?");
    check(&long, &Seen::of(&rendered), TEXT_LIMIT_BYTES);
}

#[test]
fn twins_and_cut_names_are_told_apart_by_number() {
    let reply = choices(
        "你要办的是哪一项? 回复序号:".into(),
        vec!["#77 超期订单预警提醒".into(), "#48 超期订单预警提醒".into()],
    );
    let rendered = render(&reply, "t", TEXT_LIMIT_BYTES, true);
    let card = serde_json::to_value(rendered.card.as_ref().unwrap()).unwrap();
    assert_eq!(card["button_list"][0]["text"], "1");
    assert_eq!(card["button_list"][1]["text"], "2");
    check(&reply, &Seen::of(&rendered), TEXT_LIMIT_BYTES);
}

#[test]
fn a_relabel_names_who_when_it_fits_and_the_status_alone_when_not() {
    let catalog = catalog();
    for status in [Status::Done, Status::Rejected] {
        for by_len in [1, 10, 14, 15, 16, 17, 40, 64] {
            let by = "h".repeat(by_len);
            let full = catalog.messages().render(
                MessageKey::CardHandled,
                &[("status", status.label()), ("by", &by)],
            );
            let label = handled_label(full.clone(), status.label());
            assert!(chars(&label) <= REPLACE_NAME_CHARS, "{label}");
            assert!(label.contains(status.label()));
            if chars(&full) <= REPLACE_NAME_CHARS {
                assert_eq!(label, full, "who handled it shows when it fits");
            }
        }
    }
}

/// The real catalog's wording.
pub(crate) fn catalog() -> Arc<kaitong::catalog::Catalog> {
    static CATALOG: std::sync::LazyLock<CatalogHandle> = std::sync::LazyLock::new(|| {
        CatalogHandle::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs"))
            .unwrap()
    });
    CATALOG.current()
}

// ---------------------------------------------------------------------------------------------
// Handler cards (notify): every field of a request whole on the card or in the text before it.

pub(crate) fn request(service_name: &str, summary: &[(String, String)]) -> Request {
    Request {
        id: RequestId::parse("KT-20261128-0007").unwrap(),
        form: FiledForm {
            form_id: "f1".into(),
            service: ServiceId(88),
            service_name: service_name.to_owned(),
            team: Team::Rnd,
            routing: FilingRoute::ResourcePlatform,
            window: Window::DailyBatch,
            answers: Answers::default(),
            summary: summary.to_vec(),
            requester: Requester {
                user: UserId::parse("sales1").unwrap(),
                channel: ChannelKind::App,
                conversation: Conversation::Direct,
            },
            resubmit_of: None,
        },
        submitted_at: chrono::Utc::now(),
        batch: BatchDay(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()),
        history: Vec::new(),
        notes: Vec::new(),
        deliveries: Vec::new(),
        contact: None,
        external_ticket: None,
    }
}

proptest! {
    #![proptest_config(harness::proptest_config(200))]

    #[test]
    fn every_handler_card_shows_every_field_whole(
        name_len in prop_oneof![Just(1usize), Just(21), Just(22), Just(23), 1usize..40],
        rows in prop::collection::vec((prop_oneof![Just(4usize), Just(5), Just(6), 1usize..12], prop_oneof![Just(25usize), Just(26), Just(27), Just(60), 1usize..40]), 0..9),
        position in (1usize..=6, 1usize..2000),
        console in any::<bool>(),
    ) {
        let catalog = catalog();
        let name = sentence(name_len, 3, '表');
        let summary: Vec<(String, String)> = rows
            .iter()
            .enumerate()
            .map(|(i, (label, value))| (format!("{}{i}", sentence(*label, i as u64, '称')), sentence(*value, 5, '。')))
            .collect();
        let request = request(&name, &summary);
        let (card, before) = kaitong::notify::request_card(
            catalog.messages(),
            &request,
            &UserId::parse("handler_f").unwrap(),
            (position.0, position.0.max(position.1)),
            if console { "https://kt.example.com" } else { "" },
            // Overdue cards carry a longer source line; both kinds must fit.
            position.1 % 2 == 0,
        );
        let card = serde_json::to_value(card).unwrap();
        check_card(&card);
        let seen = Seen { texts: before.into_iter().collect(), cards: vec![card.clone()] };
        let units = seen.units();
        let service = format!("#88 {name}");
        prop_assert!(units.iter().any(|u| u.contains(&service)), "{card}");
        prop_assert!(units.iter().any(|u| u.contains("KT-20261128-0007")));
        let rows_on_card: Vec<(String, String)> = card["horizontal_content_list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| (r["keyname"].as_str().unwrap().to_owned(), r["value"].as_str().unwrap().to_owned()))
            .collect();
        for (label, value) in &summary {
            let on_card = rows_on_card.iter().any(|(l, v)| l == label && v == value);
            let as_line = units.iter().any(|u| u.contains(&format!("{label}: {value}")));
            prop_assert!(on_card || as_line, "{label}: {value} not whole in {units:?} / {card}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Through the real server: the app channel with WeCom's API (the simulator), the AI bot with
// its stream, stream + card, and the answer to a click with `response_url`.

/// Answers every message with the next reply of its script.
struct ScriptedBot(Mutex<VecDeque<Reply>>);

#[async_trait::async_trait]
impl Bot for ScriptedBot {
    async fn respond(&self, _message: Inbound) -> Reply {
        self.0.lock().unwrap().pop_front().unwrap_or(Reply::Nothing)
    }
}

/// A representative reply of every kind, at, below and above the limits.
fn cases() -> Vec<Reply> {
    let yes_no = || vec!["是".to_owned(), "否".to_owned()];
    let summary = format!(
        "请核对申请信息:\n服务: #43 实施助手\n{}\n⚠️ 开通前请知悉:\n{}\n回复「确认」提交, 「修改」更改某项, 「取消」放弃。",
        (0..8)
            .map(|i| format!("· 字段{i}: {}", sentence(30, i, '。')))
            .collect::<Vec<_>>()
            .join("\n"),
        sentence(200, 9, '。'),
    );
    vec![
        Reply::Text("好的".into()),
        Reply::Text("字".repeat(682)),                          // 2046 bytes: one message
        Reply::Text(format!("{}\n{}", "字".repeat(682), "尾")), // just over: two
        Reply::Text((0..12).map(|i| sentence(200, i, '。')).collect::<Vec<_>>().join("\n")),
        Reply::Text(summary),
        choices("这个客户的实施是否已经结项?\n例如: 否".into(), yes_no()),
        choices(format!("{}\n\n已识别: 卖家账号 acct_20\n\n{}", sentence(60, 1, '。'), sentence(26, 2, '?')), yes_no()),
        choices(format!("{}\n\n{}", sentence(300, 1, '。'), sentence(27, 2, '?')), yes_no()),
        choices(
            "正在填「#48 超期订单预警」, 这条说的是「#43 实施助手」。\n1 切换: 改办它(这份不保留)\n2 稍后: 填完这份再办\n3 继续填: 刚才的话算本项回答".into(),
            vec!["切换".into(), "稍后".into(), "继续填".into()],
        ),
        choices("你要办的是哪一项? 回复序号:".into(), vec!["#5 产研 支付宝数据透视".into(), "#47 职能组 支付宝数据透视".into()]),
        choices("选择报表:".into(), (0..6).map(|i| format!("{}{i}", "选".repeat(9))).collect()),
        choices("选择报表:".into(), (0..6).map(|i| format!("{}{i}", "选".repeat(10))).collect()),
        choices(
            "需要开通哪些报表?".into(),
            ["订单缺货汇总(档口模式)", "组合装销量报表", "订单/退换单明细", "出库单缺货汇总", "印花", "销/退货品汇总统计", "多次购买查询"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
    ]
}

async fn app_with(bot: Arc<ScriptedBot>) -> (TestApp, SimulatorHandle) {
    let mut settings = harness::test_settings();
    let wecom = harness::wecom_simulator(&settings).await;
    settings.wecom.api_base = wecom.base_url();
    let api = Arc::new(
        kaitong::wecom::api::WecomApi::new(
            wecom.base_url(),
            settings.wecom.corp_id.clone(),
            settings.wecom.secret.expose().to_owned(),
            settings.wecom.agent_id,
        )
        .unwrap(),
    );
    let (store, dir) = harness::fresh_store(Backend::Embedded);
    let app = Application::build_with_api(&settings, Arc::clone(&store), bot, api)
        .await
        .unwrap();
    (TestApp::serve(app, settings, store, dir), wecom)
}

/// Waits until `count` says everything arrived (the rest of a long reply follows a moment
/// after the passive one).
async fn settle(mut count: impl FnMut() -> usize) -> usize {
    let mut last = usize::MAX;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::test]
async fn on_the_app_channel_every_case_arrives_whole_and_in_order() {
    let cases = cases();
    let bot = Arc::new(ScriptedBot(Mutex::new(cases.clone().into())));
    let (app, wecom) = app_with(Arc::clone(&bot)).await;
    for (i, reply) in cases.iter().enumerate() {
        wecom.clear_sent_messages();
        let passive = app.say_raw(&format!("p{i}"), "x").await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        settle(|| wecom.sent_messages().len()).await;
        let mut seen = Seen::default();
        seen.texts.extend(passive);
        for message in wecom.sent_messages() {
            match message.msgtype.as_str() {
                "text" => {
                    assert!(seen.cards.is_empty(), "a text after the card: case {i}");
                    seen.texts.push(message.content);
                }
                "template_card" => seen.cards.push(message.body["template_card"].clone()),
                other => panic!("unexpected {other}"),
            }
        }
        assert!(seen.cards.len() <= 1);
        check(reply, &seen, TEXT_LIMIT_BYTES);
    }
}

#[tokio::test]
async fn on_the_ai_bot_every_case_arrives_whole_a_click_too() {
    let cases = cases();
    // Each case twice: as the answer to a message, then to a click.
    let script: VecDeque<Reply> = cases.iter().flat_map(|r| [r.clone(), r.clone()]).collect();
    let bot = Arc::new(ScriptedBot(Mutex::new(script)));
    let (app, wecom) = app_with(bot).await;
    for (i, reply) in cases.iter().enumerate() {
        for click in [false, true] {
            let response_url = wecom.response_url();
            let code = response_url.rsplit('=').next().unwrap().to_owned();
            let mut json = if click {
                serde_json::json!({
                    "msgtype": "event",
                    "event": {"eventtype": "template_card_event", "template_card_event": {
                        "card_type": "button_interaction", "event_key": "k", "task_id": "t"}},
                })
            } else {
                serde_json::json!({"msgtype": "text", "text": {"content": "x"}})
            };
            json["msgid"] = format!("m{i}{click}").into();
            json["aibotid"] = "kaitong-aibot".into();
            json["chattype"] = "single".into();
            json["from"] = serde_json::json!({"userid": format!("b{i}")});
            json["response_url"] = response_url.clone().into();
            let cb = app.aibot_peer.aibot_callback(&json.to_string()).unwrap();
            let (status, body) = app.post("/wecom/aibot", &cb.query, cb.body).await;
            assert_eq!(status, 200);
            let passive = app.aibot_peer.open_aibot_reply(&body).unwrap();
            tokio::time::sleep(Duration::from_millis(900)).await;
            settle(|| wecom.response_posts().len()).await;
            let mut seen = Seen::default();
            if let Some(passive) = passive {
                if click {
                    assert_eq!(
                        passive["response_type"], "update_template_card",
                        "{passive}"
                    );
                }
                if let Some(text) = passive
                    .pointer("/stream/content")
                    .or_else(|| passive.pointer("/text/content"))
                    .and_then(Value::as_str)
                {
                    seen.texts.push(text.to_owned());
                }
                if let Some(card) = passive.get("template_card") {
                    seen.cards.push(card.clone());
                }
            }
            for post in wecom
                .response_posts()
                .into_iter()
                .filter(|p| p.response_code == code)
            {
                assert_eq!(post.msgtype, "markdown");
                seen.texts.push(post.content);
            }
            check(reply, &seen, STREAM_LIMIT_BYTES);
        }
    }
}
