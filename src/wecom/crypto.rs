//! WXBizMsgCrypt: the signature and AES scheme WeCom uses on every callback.
//!
//! Owns the byte-level protocol only (key decoding, signature, framing, padding).
//! It knows nothing of XML, JSON or HTTP; the envelope modules call it.

use aes::Aes256;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore;
use sha1::{Digest, Sha1};

use crate::config::{AiBotSection, WecomSection};

type Aes256CbcEnc = cbc::Encryptor<Aes256>;
type Aes256CbcDec = cbc::Decryptor<Aes256>;

/// WeCom pads to 32-byte blocks, not AES's 16: a 16-byte unpadder fails on real pads like 30.
const PAD_BLOCK: usize = 32;
const RANDOM_LEN: usize = 16;
const LEN_PREFIX: usize = 4;

/// Real EncodingAESKeys often carry non-zero trailing bits that a strict decoder rejects.
const LENIENT_KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The error set of Tencent's reference library; [`CryptoError::code`] gives the official number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("signature does not match")]
    ValidateSignature,
    #[error("envelope could not be parsed")]
    ParseEnvelope,
    #[error("signature could not be computed")]
    ComputeSignature,
    #[error("EncodingAESKey must be 43 base64 characters decoding to 32 bytes")]
    IllegalAesKey,
    #[error("receive id does not match")]
    ValidateReceiveId,
    #[error("AES encryption failed")]
    EncryptAes,
    #[error("AES decryption failed")]
    DecryptAes,
    #[error("decrypted buffer is malformed")]
    IllegalBuffer,
    #[error("base64 encoding failed")]
    EncodeBase64,
    #[error("base64 decoding failed")]
    DecodeBase64,
    #[error("reply envelope could not be generated")]
    GenReturnEnvelope,
}

impl CryptoError {
    /// The code Tencent's sample libraries return for this failure (-40001..-40011).
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            Self::ValidateSignature => -40001,
            Self::ParseEnvelope => -40002,
            Self::ComputeSignature => -40003,
            Self::IllegalAesKey => -40004,
            Self::ValidateReceiveId => -40005,
            Self::EncryptAes => -40006,
            Self::DecryptAes => -40007,
            Self::IllegalBuffer => -40008,
            Self::EncodeBase64 => -40009,
            Self::DecodeBase64 => -40010,
            Self::GenReturnEnvelope => -40011,
        }
    }
}

/// A decoded EncodingAESKey: 32 bytes of AES-256 key whose first 16 bytes are also the IV.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(****)")
    }
}

impl AesKey {
    /// Parses the 43-character EncodingAESKey from the admin console.
    pub fn parse(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43
            || !encoding_aes_key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        {
            return Err(CryptoError::IllegalAesKey);
        }
        let bytes = LENIENT_KEY_ENGINE
            .decode(encoding_aes_key)
            .map_err(|_| CryptoError::IllegalAesKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::IllegalAesKey)?;
        Ok(Self(key))
    }

    fn iv(&self) -> &[u8] {
        &self.0[..16]
    }

    /// Decrypts a raw AES-256-CBC payload with WeCom's PKCS#7/32 padding (used for AI-bot media too).
    pub fn decrypt_padded(&self, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
            return Err(CryptoError::DecryptAes);
        }
        let mut buf = ciphertext.to_vec();
        Aes256CbcDec::new_from_slices(&self.0, self.iv())
            .map_err(|_| CryptoError::DecryptAes)?
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::DecryptAes)?;
        let unpadded = pkcs7_unpad(&buf)?.len();
        buf.truncate(unpadded);
        Ok(buf)
    }

    fn encrypt_padded(&self, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut buf = pkcs7_pad(plaintext);
        let len = buf.len();
        Aes256CbcEnc::new_from_slices(&self.0, self.iv())
            .map_err(|_| CryptoError::EncryptAes)?
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .map_err(|_| CryptoError::EncryptAes)?;
        Ok(buf)
    }
}

/// Pads to a multiple of 32; an aligned input gets a full block of 32 × 0x20.
fn pkcs7_pad(data: &[u8]) -> Vec<u8> {
    let pad = PAD_BLOCK - data.len() % PAD_BLOCK;
    let mut out = Vec::with_capacity(data.len() + pad);
    out.extend_from_slice(data);
    // pad is 1..=32, so the cast cannot truncate.
    out.resize(data.len() + pad, pad as u8);
    out
}

/// Strict unpad: the pad value must be 1..=32 and every pad byte must equal it.
fn pkcs7_unpad(data: &[u8]) -> Result<&[u8], CryptoError> {
    let pad = usize::from(*data.last().ok_or(CryptoError::IllegalBuffer)?);
    if pad == 0 || pad > PAD_BLOCK || pad > data.len() {
        return Err(CryptoError::IllegalBuffer);
    }
    let (body, padding) = data.split_at(data.len() - pad);
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(CryptoError::IllegalBuffer);
    }
    Ok(body)
}

/// A decrypted callback payload: the message and the receive id it was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    pub message: Vec<u8>,
    pub receive_id: Vec<u8>,
}

/// A configured `encoding_aes_key` that is not a WeCom key; names the setting, never the value.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {key}: {reason}")]
pub struct AesKeySettingError {
    pub key: &'static str,
    pub reason: CryptoError,
}

/// One app's (or AI bot's) callback crypto: token, key and the receive id it expects.
#[derive(Clone)]
pub struct MsgCrypt {
    token: String,
    key: AesKey,
    receive_id: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

impl MsgCrypt {
    /// `receive_id` is the CorpID for a self-built app and the empty string for an AI bot.
    pub fn new(
        token: impl Into<String>,
        encoding_aes_key: &str,
        receive_id: impl Into<String>,
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            token: token.into(),
            key: AesKey::parse(encoding_aes_key)?,
            receive_id: receive_id.into(),
        })
    }

    /// The app channel's crypto from `[wecom]`: receive id = CorpID.
    pub fn for_app(section: &WecomSection) -> Result<Self, AesKeySettingError> {
        Self::new(
            section.token.expose(),
            section.encoding_aes_key.expose(),
            section.corp_id.clone(),
        )
        .map_err(|reason| AesKeySettingError {
            key: "wecom.encoding_aes_key",
            reason,
        })
    }

    /// The AI bot's crypto from `[aibot]`: receive id is the empty string.
    pub fn for_aibot(section: &AiBotSection) -> Result<Self, AesKeySettingError> {
        Self::new(
            section.token.expose(),
            section.encoding_aes_key.expose(),
            "",
        )
        .map_err(|reason| AesKeySettingError {
            key: "aibot.encoding_aes_key",
            reason,
        })
    }

    #[must_use]
    pub fn key(&self) -> &AesKey {
        &self.key
    }

    #[must_use]
    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// sha1 over the byte-wise sorted concatenation of token, timestamp, nonce and ciphertext, lower hex.
    #[must_use]
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypted: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypted];
        parts.sort_unstable();
        let mut hasher = Sha1::new();
        for part in parts {
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Constant-time comparison so the signature cannot be guessed byte by byte.
    pub fn verify_signature(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.signature(timestamp, nonce, encrypted);
        let given = signature.to_ascii_lowercase();
        if crate::secret::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(CryptoError::ValidateSignature)
        }
    }

    /// Decrypts and checks the receive id against the expected one.
    pub fn decrypt(&self, encrypted: &str) -> Result<Vec<u8>, CryptoError> {
        let decrypted = self.decrypt_any_receiver(encrypted)?;
        if decrypted.receive_id != self.receive_id.as_bytes() {
            return Err(CryptoError::ValidateReceiveId);
        }
        Ok(decrypted.message)
    }

    /// Verifies the signature first, so nothing is decrypted for an unsigned request.
    pub fn verify_and_decrypt(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypted: &str,
    ) -> Result<Vec<u8>, CryptoError> {
        self.verify_signature(signature, timestamp, nonce, encrypted)?;
        self.decrypt(encrypted)
    }

    /// Decrypts without judging the receive id (the caller inspects it).
    pub fn decrypt_any_receiver(&self, encrypted: &str) -> Result<Decrypted, CryptoError> {
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::DecodeBase64)?;
        let plain = self.key.decrypt_padded(&ciphertext)?;
        // random(16) ‖ len(4, big-endian) ‖ message ‖ receive id; the random part may be any bytes.
        let header_end = RANDOM_LEN + LEN_PREFIX;
        let len_bytes: [u8; 4] = plain
            .get(RANDOM_LEN..header_end)
            .and_then(|s| s.try_into().ok())
            .ok_or(CryptoError::IllegalBuffer)?;
        let msg_len = usize::try_from(u32::from_be_bytes(len_bytes))
            .map_err(|_| CryptoError::IllegalBuffer)?;
        let msg_end = header_end
            .checked_add(msg_len)
            .filter(|&end| end <= plain.len())
            .ok_or(CryptoError::IllegalBuffer)?;
        Ok(Decrypted {
            message: plain[header_end..msg_end].to_vec(),
            receive_id: plain[msg_end..].to_vec(),
        })
    }

    /// Encrypts with a fresh random prefix.
    pub fn encrypt(&self, message: &[u8]) -> Result<String, CryptoError> {
        let mut random = [0u8; RANDOM_LEN];
        rand::thread_rng().fill_bytes(&mut random);
        self.encrypt_with_random(random, message)
    }

    /// Encrypts with a caller-chosen prefix; deterministic, for test vectors.
    pub fn encrypt_with_random(
        &self,
        random: [u8; RANDOM_LEN],
        message: &[u8],
    ) -> Result<String, CryptoError> {
        let msg_len = u32::try_from(message.len()).map_err(|_| CryptoError::EncryptAes)?;
        let mut plain =
            Vec::with_capacity(RANDOM_LEN + LEN_PREFIX + message.len() + self.receive_id.len());
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&msg_len.to_be_bytes());
        plain.extend_from_slice(message);
        plain.extend_from_slice(self.receive_id.as_bytes());
        let ciphertext = self.key.encrypt_padded(&plain)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(ciphertext))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    #[test]
    fn keys_with_trailing_bits_are_accepted() {
        assert!(AesKey::parse(KEY).is_ok());
    }

    #[test]
    fn keys_of_the_wrong_length_or_alphabet_are_rejected() {
        for bad in [
            &KEY[..42],
            &format!("{KEY}A"),
            &format!("{KEY}="),
            &format!("{}$", &KEY[..42]),
            "",
        ] {
            assert_eq!(AesKey::parse(bad), Err(CryptoError::IllegalAesKey), "{bad}");
        }
    }

    #[test]
    fn every_pad_length_round_trips_through_unpad() {
        for len in 0..=96 {
            let data = vec![7u8; len];
            let padded = pkcs7_pad(&data);
            assert_eq!(padded.len() % 32, 0);
            let pad = padded.len() - len;
            assert!((1..=32).contains(&pad));
            assert_eq!(pkcs7_unpad(&padded).unwrap(), &data[..]);
        }
    }

    #[test]
    fn unpad_rejects_zero_oversized_and_uneven_pads() {
        assert_eq!(pkcs7_unpad(&[0u8; 32]), Err(CryptoError::IllegalBuffer));
        assert_eq!(pkcs7_unpad(&[33u8; 64]), Err(CryptoError::IllegalBuffer));
        let mut uneven = vec![5u8; 32];
        uneven[28] = 4;
        assert_eq!(pkcs7_unpad(&uneven), Err(CryptoError::IllegalBuffer));
        assert_eq!(pkcs7_unpad(&[]), Err(CryptoError::IllegalBuffer));
    }

    #[test]
    fn error_codes_follow_the_official_table() {
        assert_eq!(CryptoError::ValidateSignature.code(), -40001);
        assert_eq!(CryptoError::IllegalAesKey.code(), -40004);
        assert_eq!(CryptoError::ValidateReceiveId.code(), -40005);
        assert_eq!(CryptoError::IllegalBuffer.code(), -40008);
        assert_eq!(CryptoError::GenReturnEnvelope.code(), -40011);
    }

    #[test]
    fn a_length_prefix_beyond_the_buffer_is_rejected() {
        let crypt = MsgCrypt::new("t", KEY, "corp").unwrap();
        let mut plain = vec![0u8; 16];
        plain.extend_from_slice(&u32::MAX.to_be_bytes());
        plain.extend_from_slice(b"hi");
        let ct = crypt.key.encrypt_padded(&plain).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(ct);
        assert_eq!(crypt.decrypt(&b64), Err(CryptoError::IllegalBuffer));
    }

    #[test]
    fn a_wrong_receive_id_is_rejected() {
        let sender = MsgCrypt::new("t", KEY, "other").unwrap();
        let receiver = MsgCrypt::new("t", KEY, "corp").unwrap();
        let ct = sender.encrypt(b"hello").unwrap();
        assert_eq!(receiver.decrypt(&ct), Err(CryptoError::ValidateReceiveId));
    }

    #[test]
    fn a_bad_configured_aes_key_names_the_key() {
        let env = vec![(
            "KAITONG_AIBOT__ENCODING_AES_KEY".to_owned(),
            "short".to_owned(),
        )];
        let settings = crate::config::Settings::load_with_env(None, env).unwrap();
        assert!(MsgCrypt::for_app(&settings.wecom).is_ok());
        let err = MsgCrypt::for_aibot(&settings.aibot).unwrap_err();
        assert!(err.to_string().contains("aibot.encoding_aes_key"), "{err}");
    }
}
