//! Decrypt + envelope parsing on arbitrary bytes: must never panic.
//! Run: `cargo +nightly fuzz run callback` (or RUSTC_BOOTSTRAP=1 cargo fuzz run callback).
#![no_main]

use kaitong::wecom::{MsgCrypt, aibot_json, app_xml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(crypt) = MsgCrypt::new("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7") else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    if let Ok(encrypted) = app_xml::Envelope::parse(&text) {
        if let Ok(plain) = crypt.decrypt(&encrypted) {
            let _ = app_xml::InnerMessage::parse(&String::from_utf8_lossy(&plain));
        }
    }
    if let Ok(encrypted) = aibot_json::parse_envelope(data) {
        if let Ok(plain) = crypt.decrypt(&encrypted) {
            let _ = aibot_json::BotMessage::parse(&plain);
        }
    }
    let _ = crypt.decrypt(&text);
    let _ = app_xml::InnerMessage::parse(&text);
    let _ = aibot_json::BotMessage::parse(data);
    let _ = aibot_json::strip_mentions(&text);
});
