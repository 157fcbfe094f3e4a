//! Property test of the reading: for generated messages that ask for two or three limit raises
//! (each named in full, with its own number and sometimes its own customer, joined by
//! connectives, fillers or nothing, sometimes corrected), every value each request reads is the
//! one said in its own clause, and no value crosses to another request.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::LazyLock;

use kaitong::catalog::{Catalog, FieldKind, FieldValue};
use kaitong::dialog::reading::read;
use kaitong::dialog::slots::extract;
use kaitong::dialog::understand::{Matcher, Tuning};
use kaitong::domain::ServiceId;
use proptest::prelude::*;

use crate::harness;

struct Fixture {
    catalog: Catalog,
    matcher: Matcher,
    /// (service, its one number's cap range) of the services a hurried line raises.
    raises: Vec<(ServiceId, String, i64, i64)>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
    let catalog = Catalog::load(&dir).unwrap_or_else(|e| panic!("catalog: {e}"));
    let matcher = Matcher::new(
        &catalog,
        Tuning::load(&dir).unwrap_or_else(|e| panic!("tuning: {e}")),
    );
    let raises = [33u16, 50, 58, 59, 85, 87, 52, 51]
        .iter()
        .filter_map(|id| {
            let s = catalog.service(ServiceId(*id))?;
            let (lo, hi) = s.fields.iter().find_map(|f| match &f.spec.kind {
                FieldKind::Integer {
                    min,
                    max,
                    default,
                    allowed,
                    ..
                } if allowed.is_empty() => {
                    Some((default.or(*min).unwrap_or(1) + 1, max.unwrap_or(10_000)))
                }
                _ => None,
            })?;
            Some((s.id, s.name.clone(), lo, hi))
        })
        .collect();
    Fixture {
        catalog,
        matcher,
        raises,
    }
});

/// (raise index, number, customer) per request; the joins between them; whether the first
/// number is corrected in place.
type PlanCase = (Vec<(usize, i64, Option<String>)>, Vec<usize>, bool);

fn plan_case() -> impl Strategy<Value = PlanCase> {
    let n = FIXTURE.raises.len();
    (
        proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 2..=3).prop_shuffle(),
        proptest::collection::vec(0usize..1000, 3),
        proptest::collection::vec(proptest::option::of("[a-z]{2,5}_[0-9]{2}"), 3),
        proptest::collection::vec(0usize..6, 3),
        any::<bool>(),
    )
        .prop_map(|(picked, numbers, accounts, joins, corrected)| {
            let items = picked
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let (_, _, lo, hi) = &FIXTURE.raises[s];
                    let span = (hi - lo).max(1);
                    let value = lo + (numbers[i] as i64 * 7919) % span;
                    (s, value, accounts[i].clone())
                })
                .collect();
            (items, joins, corrected)
        })
}

const JOINS: [&str; 6] = [" ", "，", " 还有", " 另外 ", "；然后", " 再把"];

proptest! {
    #![proptest_config(harness::proptest_config(96))]

    #[test]
    fn every_value_stays_with_the_request_of_its_own_clause(case in plan_case()) {
        let (items, joins, corrected) = case;
        let f = &*FIXTURE;
        let mut text = String::new();
        for (i, (s, value, account)) in items.iter().enumerate() {
            let (_, name, _, _) = &f.raises[*s];
            if i > 0 {
                text.push_str(JOINS[joins[i - 1]]);
            }
            if let Some(a) = account {
                text.push_str(&format!("{a}的"));
            }
            // The first number is sometimes said wrong first and corrected in place.
            if corrected && i == 0 {
                text.push_str(&format!("{name}调到{} 哦不对 {value}", value - 1));
            } else {
                text.push_str(&format!("{name}调到{value}"));
            }
        }
        let tuning = f.matcher.tuning();
        let reading = read(&f.catalog, &f.matcher, &tuning.reading, &tuning.slots, &text);
        let planned: Vec<ServiceId> = reading.plan.iter().map(|p| p.service).collect();
        let meant: Vec<ServiceId> = items.iter().map(|(s, _, _)| f.raises[*s].0).collect();
        prop_assert_eq!(&planned, &meant, "{}", text);
        for (p, (s, value, account)) in reading.plan.iter().zip(&items) {
            let service = f.catalog.service(f.raises[*s].0).unwrap();
            let found = extract(&f.catalog, service, &tuning.slots, &p.text);
            let numbers: Vec<i64> = found
                .answers
                .values()
                .filter_map(|v| match v {
                    FieldValue::Integer(n) => Some(*n),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(&numbers, &vec![*value], "{} → {:?}", text, p);
            // The value's literal source is in the request's own text, and that text holds no
            // other request's number.
            prop_assert!(p.text.contains(&value.to_string()), "{} → {:?}", text, p);
            // The number said wrong first and corrected is the first request's own text.
            let taken_back = items.first().map(|(_, v, _)| v - 1).filter(|_| corrected);
            let said = numbers_after_cue(&p.text);
            for (other, v, _) in &items {
                if other != s && Some(*v) != taken_back && v != value {
                    prop_assert!(!said.contains(v), "{} → {:?}", text, p);
                }
            }
            if let Some(a) = account {
                prop_assert_eq!(p.account.as_deref(), Some(a.as_str()), "{} → {:?}", text, p);
            }
        }
    }
}

/// The whole numbers written right after 调到 ("调到139" is 139, never 13).
fn numbers_after_cue(text: &str) -> Vec<i64> {
    text.split("调到")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// The first two Chinese characters of `name` that no other name in `others` holds.
fn own_part(name: &str, others: &[&str]) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    chars
        .windows(2)
        .filter(|w| w.iter().all(|c| ('\u{4e00}'..='\u{9fff}').contains(c)))
        .map(|w| w.iter().collect::<String>())
        .find(|part| others.iter().all(|o| !o.contains(part.as_str())))
}

/// The numbers a request's text gives its one integer field.
fn integers(text: &str, id: ServiceId) -> Vec<i64> {
    let f = &*FIXTURE;
    let service = f.catalog.service(id).unwrap();
    extract(&f.catalog, service, &f.matcher.tuning().slots, text)
        .answers
        .values()
        .filter_map(|v| match v {
            FieldValue::Integer(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[test]
fn a_correction_naming_an_earlier_request_mends_that_one_only() {
    // "A调到x 另外B调到y 哦不对 <A的词>那个写错了 应该是z": z is A's, y stays B's. Every pair
    // of limit raises whose first has words of its own.
    let f = &*FIXTURE;
    let mut tried = 0;
    for (a, a_name, a_lo, a_hi) in &f.raises {
        for (b, b_name, b_lo, b_hi) in &f.raises {
            if a == b {
                continue;
            }
            let Some(part) = own_part(a_name, &[b_name.as_str()]) else {
                continue;
            };
            tried += 1;
            let (x, z) = (a_lo + 1, (a_lo + a_hi) / 2);
            let y = (b_lo + b_hi) / 2 + 1;
            let text = format!(
                "sh_one01 {a_name}调到{x} 另外 bj_two02 的{b_name}调到{y} 哦不对 {part}那个写错了 \
                 应该是{z} 什么时候能好"
            );
            let tuning = f.matcher.tuning();
            let reading = read(
                &f.catalog,
                &f.matcher,
                &tuning.reading,
                &tuning.slots,
                &text,
            );
            let planned: Vec<ServiceId> = reading.plan.iter().map(|p| p.service).collect();
            assert_eq!(planned, vec![*a, *b], "{text}");
            assert_eq!(
                integers(&reading.plan[0].text, *a),
                vec![z],
                "{text}: {:?}",
                reading.plan
            );
            assert_eq!(
                integers(&reading.plan[1].text, *b),
                vec![y],
                "{text}: {:?}",
                reading.plan
            );
            assert_eq!(
                reading.plan[0].account.as_deref(),
                Some("sh_one01"),
                "{text}"
            );
            assert_eq!(
                reading.plan[1].account.as_deref(),
                Some("bj_two02"),
                "{text}"
            );
            assert_eq!(
                reading.questions.len(),
                1,
                "{text}: {:?}",
                reading.questions
            );
        }
    }
    assert!(tried >= 20, "only {tried} pairs tried");
}

#[test]
fn an_account_corrected_with_the_old_one_written_out_is_replaced_where_it_was_said() {
    let f = &*FIXTURE;
    let tuning = f.matcher.tuning();
    for text in [
        "sz_ld 开电子发票 客户要开票 另外物流追踪也开一下 给 sz_ld_2 不是 sz_ld_2 是 sz_ld02",
        "sz_ld 开电子发票 客户要开票 另外物流追踪也开一下 给 sz_ld_2 sz_ld_2写错了 应该是 sz_ld02",
    ] {
        let reading = read(&f.catalog, &f.matcher, &tuning.reading, &tuning.slots, text);
        let accounts: Vec<Option<&str>> =
            reading.plan.iter().map(|p| p.account.as_deref()).collect();
        assert_eq!(accounts, vec![Some("sz_ld"), Some("sz_ld02")], "{text}");
        assert!(
            reading.plan.iter().all(|p| !p.text.contains("sz_ld_2")),
            "{text}: {:?}",
            reading.plan
        );
    }
}
