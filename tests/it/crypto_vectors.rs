//! Every interoperability vector from `tests/fixtures/wecom_vectors.json` (Tencent's samples,
//! wechatpy's tests and one synthetic AI-bot vector) against `wecom::crypto`.
#![allow(clippy::unwrap_used)]

use kaitong::wecom::{CryptoError, MsgCrypt};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/wecom_vectors.json")).unwrap()
}

fn vectors() -> Vec<Value> {
    fixture()["vectors"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {key}"))
}

fn crypt_of(v: &Value) -> MsgCrypt {
    MsgCrypt::new(s(v, "token"), s(v, "encoding_aes_key"), s(v, "receive_id")).unwrap()
}

fn random16(v: &Value) -> [u8; 16] {
    hex::decode(s(v, "random16_hex"))
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn the_fixture_holds_all_nine_vectors() {
    assert_eq!(vectors().len(), 9);
}

#[test]
fn every_vector_signature_verifies() {
    for v in vectors() {
        let crypt = crypt_of(&v);
        assert_eq!(
            crypt.signature(s(&v, "timestamp"), s(&v, "nonce"), s(&v, "encrypt")),
            s(&v, "msg_signature"),
            "{}",
            s(&v, "name")
        );
        crypt
            .verify_signature(
                s(&v, "msg_signature"),
                s(&v, "timestamp"),
                s(&v, "nonce"),
                s(&v, "encrypt"),
            )
            .unwrap();
    }
}

#[test]
fn every_vector_decrypts_to_its_plaintext() {
    for v in vectors() {
        let crypt = crypt_of(&v);
        let plain = crypt
            .verify_and_decrypt(
                s(&v, "msg_signature"),
                s(&v, "timestamp"),
                s(&v, "nonce"),
                s(&v, "encrypt"),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", s(&v, "name")));
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            s(&v, "expected_plaintext"),
            "{}",
            s(&v, "name")
        );
    }
}

#[test]
fn every_vector_re_encrypts_byte_for_byte_with_its_random_prefix() {
    // With the same 16 random bytes, encryption is deterministic: this checks framing and padding.
    for v in vectors() {
        let crypt = crypt_of(&v);
        let encrypted = crypt
            .encrypt_with_random(random16(&v), s(&v, "expected_plaintext").as_bytes())
            .unwrap();
        assert_eq!(encrypted, s(&v, "encrypt"), "{}", s(&v, "name"));
    }
}

#[test]
fn the_recorded_pad_bytes_include_thirty() {
    let pads: Vec<u64> = vectors()
        .iter()
        .map(|v| v["pkcs7_pad_byte"].as_u64().unwrap())
        .collect();
    assert!(pads.contains(&30) && pads.contains(&1), "{pads:?}");
}

#[test]
fn wechatpy_verifyurl_fails_with_the_nonce_one_less() {
    let v = vectors()
        .into_iter()
        .find(|v| s(v, "name") == "wechatpy-verifyurl")
        .unwrap();
    let crypt = crypt_of(&v);
    let nonce: u64 = s(&v, "nonce").parse().unwrap();
    assert_eq!(
        crypt.verify_signature(
            s(&v, "msg_signature"),
            s(&v, "timestamp"),
            &(nonce - 1).to_string(),
            s(&v, "encrypt")
        ),
        Err(CryptoError::ValidateSignature)
    );
}

#[test]
fn a_vector_decrypted_for_another_receiver_is_rejected() {
    let v = &vectors()[0];
    let crypt = MsgCrypt::new(s(v, "token"), s(v, "encoding_aes_key"), "ww_someone_else").unwrap();
    assert_eq!(
        crypt.decrypt(s(v, "encrypt")),
        Err(CryptoError::ValidateReceiveId)
    );
}

#[test]
fn the_synthetic_aibot_vector_round_trips_with_an_empty_receive_id() {
    let f = fixture();
    let bot = &f["synthetic_aibot"];
    let crypt = MsgCrypt::new(s(bot, "token"), s(bot, "encoding_aes_key"), "").unwrap();
    let inbound = &bot["inbound"];
    let plain = crypt
        .verify_and_decrypt(
            s(inbound, "msg_signature"),
            s(bot, "timestamp"),
            s(bot, "nonce"),
            s(inbound, "encrypt"),
        )
        .unwrap();
    assert_eq!(String::from_utf8(plain).unwrap(), s(inbound, "plaintext"));
    let random: [u8; 16] = s(inbound, "random16").as_bytes().try_into().unwrap();
    assert_eq!(
        crypt
            .encrypt_with_random(random, s(inbound, "plaintext").as_bytes())
            .unwrap(),
        s(inbound, "encrypt")
    );

    let reply = &bot["reply"];
    let random: [u8; 16] = s(reply, "random16").as_bytes().try_into().unwrap();
    let encrypted = crypt
        .encrypt_with_random(random, s(reply, "plaintext").as_bytes())
        .unwrap();
    assert_eq!(encrypted, s(reply, "encrypt"));
    assert_eq!(
        crypt.signature(s(bot, "timestamp"), s(bot, "nonce"), &encrypted),
        s(reply, "msgsignature")
    );
}

#[test]
fn the_official_request_bodies_parse_to_the_vector_ciphertext() {
    for v in vectors().iter().filter(|v| v.get("request_body").is_some()) {
        let body = s(v, "request_body");
        let encrypted = if s(v, "kind").contains("json") {
            kaitong::wecom::aibot_json::parse_envelope(body.as_bytes()).unwrap()
        } else {
            kaitong::wecom::app_xml::Envelope::parse(body).unwrap()
        };
        assert_eq!(encrypted, s(v, "encrypt"), "{}", s(v, "name"));
    }
}

#[test]
fn the_passive_reply_envelope_matches_the_official_template() {
    let v = vectors()
        .into_iter()
        .find(|v| s(v, "name") == "wechatpy-encrypt-deterministic")
        .unwrap();
    let crypt = crypt_of(&v);
    let encrypted = crypt
        .encrypt_with_random(random16(&v), s(&v, "expected_plaintext").as_bytes())
        .unwrap();
    let signature = crypt.signature(s(&v, "timestamp"), s(&v, "nonce"), &encrypted);
    assert_eq!(signature, s(&v, "msg_signature"));
    let body = kaitong::wecom::app_xml::reply_envelope(
        &encrypted,
        &signature,
        s(&v, "timestamp"),
        s(&v, "nonce"),
    );
    assert_eq!(
        body,
        format!(
            "<xml>\n<Encrypt><![CDATA[{encrypted}]]></Encrypt>\n<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n<TimeStamp>{}</TimeStamp>\n<Nonce><![CDATA[{}]]></Nonce>\n</xml>",
            s(&v, "timestamp"),
            s(&v, "nonce")
        )
    );
}
