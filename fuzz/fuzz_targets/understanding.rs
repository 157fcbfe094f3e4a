//! Understanding and one engine turn on arbitrary text: must never panic.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use kaitong::catalog::Catalog;
use kaitong::channel::Content;
use kaitong::dialog::engine::Engine;
use kaitong::dialog::session::Session;
use kaitong::dialog::understand::{Matcher, Tuning, extract_slots};
use kaitong::requests::BatchSchedule;
use libfuzzer_sys::fuzz_target;

fn index() -> &'static (Catalog, Matcher) {
    static INDEX: OnceLock<(Catalog, Matcher)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dialogs");
        let catalog = Catalog::load(&dir).expect("catalog");
        let matcher = Matcher::new(&catalog, Tuning::load(&dir).expect("tuning"));
        (catalog, matcher)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (catalog, matcher) = index();
    let ranked = matcher.rank(&text);
    let _ = matcher.verdict(&ranked);
    if let Some(best) = ranked.first().and_then(|s| catalog.service(s.id)) {
        let _ = extract_slots(best, &text);
    }
    let engine = Engine { catalog, matcher, schedule: &BatchSchedule::default(), in_group: false };
    let outcome = engine.turn(Session::default(), false, &Content::Text(text.to_string()), chrono::Utc::now());
    // A second turn from wherever the first left the form.
    let _ = engine.turn(outcome.session, false, &Content::Text(text.to_string()), chrono::Utc::now());
});
