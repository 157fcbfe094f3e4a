//! Property tests for `wecom::crypto`, plus interop with an independent AES implementation
//! (the `openssl` command line) so our framing is not only checked against itself.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kaitong::wecom::{AesKey, CryptoError, MsgCrypt};
use proptest::prelude::*;

use crate::harness;

const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

fn crypt(receive_id: &str) -> MsgCrypt {
    MsgCrypt::new("QDG6eK", KEY, receive_id).unwrap()
}

/// Multi-byte UTF-8 text up to 64 KiB: mixes ASCII, CJK and 4-byte characters.
fn message() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>(),
            prop::char::range('\u{4e00}', '\u{9fa5}'),
            Just('😀'),
            prop::char::range('a', 'z'),
        ],
        0..2048,
    )
    .prop_flat_map(|chars| {
        // Occasionally stretch to the 64 KiB end of the range.
        (Just(chars), 1usize..=8).prop_map(|(chars, times)| {
            let base: String = chars.into_iter().collect();
            if times == 8 {
                let mut big = base.repeat(64);
                let mut end = big.len().min(64 * 1024);
                while !big.is_char_boundary(end) {
                    end -= 1;
                }
                big.truncate(end);
                big
            } else {
                base
            }
        })
    })
}

proptest! {
    #![proptest_config(harness::proptest_config(128))]

    #[test]
    fn round_trip_any_utf8_message(msg in message(), receive_id in "[a-zA-Z0-9]{0,24}") {
        let c = crypt(&receive_id);
        let encrypted = c.encrypt(msg.as_bytes()).unwrap();
        prop_assert_eq!(c.decrypt(&encrypted).unwrap(), msg.as_bytes());
    }

    #[test]
    fn round_trip_with_binary_random_prefix(random in any::<[u8; 16]>(), msg in prop::collection::vec(any::<u8>(), 0..512)) {
        let c = crypt("wx5823bf96d3bd56c7");
        let encrypted = c.encrypt_with_random(random, &msg).unwrap();
        prop_assert_eq!(c.decrypt(&encrypted).unwrap(), msg);
    }

    #[test]
    fn signatures_cover_non_numeric_nonces(nonce in "\\PC{0,40}", ts in "[0-9]{1,12}", body in "[A-Za-z0-9+/=]{0,200}") {
        let c = crypt("corp");
        let sig = c.signature(&ts, &nonce, &body);
        prop_assert!(c.verify_signature(&sig, &ts, &nonce, &body).is_ok());
        prop_assert_eq!(c.verify_signature(&sig, &ts, &format!("{nonce}x"), &body), Err(CryptoError::ValidateSignature));
    }

    #[test]
    fn decrypt_never_panics_on_arbitrary_text(junk in "\\PC{0,300}") {
        let _ = crypt("corp").decrypt(&junk);
    }

    #[test]
    fn decrypt_never_panics_on_arbitrary_ciphertext(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = crypt("corp").decrypt(&STANDARD.encode(&bytes));
    }

    #[test]
    fn envelopes_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = kaitong::wecom::aibot_json::parse_envelope(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = kaitong::wecom::app_xml::Envelope::parse(&text);
        let _ = kaitong::wecom::app_xml::InnerMessage::parse(&text);
        let _ = kaitong::wecom::aibot_json::BotMessage::parse(&bytes);
    }

    #[test]
    fn key_parsing_never_panics(key in "\\PC{0,60}") {
        let _ = AesKey::parse(&key);
    }
}

#[test]
fn every_pad_length_from_1_to_32_round_trips() {
    let c = crypt("");
    let mut seen = std::collections::BTreeSet::new();
    // plaintext = 16 + 4 + len, so 32 consecutive lengths give every pad value once.
    for len in 0..32 {
        let msg = vec![b'x'; len];
        let encrypted = c.encrypt(&msg).unwrap();
        let raw = STANDARD.decode(&encrypted).unwrap();
        seen.insert(raw.len() - (20 + len));
        assert_eq!(c.decrypt(&encrypted).unwrap(), msg);
    }
    assert_eq!(seen, (1..=32).collect());
}

fn key_bytes() -> Vec<u8> {
    // Independent key decode: pad to 44 chars and decode leniently by hand via the alphabet.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u64 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in KEY.bytes() {
        let v = alphabet.iter().position(|&a| a == c).unwrap() as u64;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    out.truncate(32);
    out
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl must be installed for the interop test");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn interoperates_with_openssl_in_both_directions() {
    let key = key_bytes();
    assert_eq!(key.len(), 32);
    let key_hex = hex::encode(&key);
    let iv_hex = hex::encode(&key[..16]);
    let c = crypt("wx5823bf96d3bd56c7");
    for msg in ["", "hello", "你好,开通电子发票 😀", &"长消息".repeat(500)] {
        // Ours → openssl: decrypt with no padding, then unframe by hand.
        let ours = STANDARD.decode(c.encrypt(msg.as_bytes()).unwrap()).unwrap();
        let plain = openssl(
            &[
                "enc",
                "-d",
                "-aes-256-cbc",
                "-nopad",
                "-K",
                &key_hex,
                "-iv",
                &iv_hex,
            ],
            &ours,
        );
        let pad = *plain.last().unwrap() as usize;
        let body = &plain[..plain.len() - pad];
        let len = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
        assert_eq!(&body[20..20 + len], msg.as_bytes());
        assert_eq!(&body[20 + len..], b"wx5823bf96d3bd56c7");

        // openssl → ours: frame and pad by hand, encrypt with openssl.
        let mut framed = b"0123456789abcdef".to_vec();
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(msg.as_bytes());
        framed.extend_from_slice(b"wx5823bf96d3bd56c7");
        let pad = 32 - framed.len() % 32;
        framed.extend(std::iter::repeat_n(pad as u8, pad));
        let theirs = openssl(
            &[
                "enc",
                "-e",
                "-aes-256-cbc",
                "-nopad",
                "-K",
                &key_hex,
                "-iv",
                &iv_hex,
            ],
            &framed,
        );
        assert_eq!(c.decrypt(&STANDARD.encode(theirs)).unwrap(), msg.as_bytes());
    }
}
