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
