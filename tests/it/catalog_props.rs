//! Property tests: answer parsing never panics on arbitrary input, and
//! plain integers within a field's caps (above the default of a raised limit) are always
//! accepted.

use std::path::Path;
use std::sync::LazyLock;

use kaitong::catalog::{Catalog, FieldKind, FieldValue};
use proptest::prelude::*;

use crate::harness;

static CATALOG: LazyLock<Catalog> = LazyLock::new(load);

fn catalog() -> &'static Catalog {
    &CATALOG
}

fn load() -> Catalog {
    match Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs")) {
        Ok(c) => c,
        Err(e) => panic!("catalog must load: {e}"),
    }
}

proptest! {
    #![proptest_config(harness::proptest_config(64))]

    #[test]
    fn parse_answer_never_panics(raw in "\\PC{0,40}") {
        let c = catalog();
        for s in c.services() {
            for f in &s.fields {
                let _ = f.spec.parse_answer(&raw);
            }
        }
    }

    #[test]
    fn chinese_and_unit_heavy_input_never_panics(raw in "[0-9一二两三四五六七八九十百千万wk.,元天小时h ]{0,30}") {
        let c = catalog();
        for s in c.services() {
            for f in &s.fields {
                let _ = f.spec.parse_answer(&raw);
            }
        }
    }

    #[test]
    fn integers_inside_caps_are_accepted(n in 0i64..100_000) {
        let c = catalog();
        for s in c.services() {
            for f in &s.fields {
                if let FieldKind::Integer { min, max, allowed, default, .. } = &f.spec.kind {
                    // A limit with a default below its cap is raised: the default is no request.
                    let raised = matches!((default, max), (Some(d), Some(m)) if d < m);
                    let inside = min.is_none_or(|m| n >= m)
                        && max.is_none_or(|m| n <= m)
                        && (allowed.is_empty() || allowed.contains(&n))
                        && (!raised || default.is_none_or(|d| n > d));
                    let got = f.spec.parse_answer(&n.to_string());
                    if inside {
                        prop_assert_eq!(got, Ok(FieldValue::Integer(n)));
                    } else {
                        prop_assert!(got.is_err());
                    }
                }
            }
        }
    }
}
