//! The in-process default: a static token-vector table distilled from a real model
//! (`kaitong-dev distill`), loaded at start and on reload. No server, no model weights at run time:
//! a message is cut into words with jieba, each word's stored vector is looked up, and the
//! frequency-weighted mean is the message's vector (model2vec style).
//!
//! File format (`.kvec`, all integers and floats little-endian):
//!
//! | bytes            | what                                                          |
//! | ---------------- | ------------------------------------------------------------- |
//! | 4                | magic `KVEC`                                                  |
//! | u32              | format version (1)                                            |
//! | u32 + n bytes    | provenance, JSON ([`Provenance`])                             |
//! | u32, u32         | number of words, dimensions                                   |
//! | u32 + n bytes    | the words, UTF-8, one per `\n`-terminated line                |
//! | words × u32      | each word's frequency (jieba dictionary counts)               |
//! | words × f32      | each row's quantisation scale                                 |
//! | words × dims i8  | the vectors, row-major, `value = i8 × scale`                  |
//! | 32               | SHA-256 of everything before it                               |
//!
//! The checksum is what makes a truncated or bit-flipped file refused as a whole instead of
//! silently giving wrong vectors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use jieba_rs::Jieba;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{EmbedError, TableError};
use super::vector::{Vector, normalise};
use crate::catalog::value::normalize_width;

const MAGIC: &[u8; 4] = b"KVEC";
const VERSION: u32 = 1;
const CHECKSUM_LEN: usize = 32;
/// Bounds that no real table comes near; they keep a garbage header from asking for gigabytes.
const MAX_DIMS: usize = 4096;
const MAX_HEADER: usize = 64 * 1024;

/// SIF's `a`: a word with probability `p` weighs `a / (a + p)`, so "的" counts for little and a
/// rare, telling word for nearly 1.
const SIF_A: f64 = 1e-3;

/// Where a table came from, stored in its header and shown by `PROVENANCE.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The teacher model the vectors were distilled from.
    pub model: String,
    /// The teacher model's licence (the table is derived from its outputs).
    pub licence: String,
    /// The exact command that wrote the table.
    pub command: String,
    /// UTC date of the distillation, `YYYY-MM-DD`.
    pub date: String,
    /// The embedding server that was asked.
    pub url: String,
    /// Vocabulary size.
    pub words: usize,
    pub dims: usize,
}

/// One row to write: a normalised word, its frequency, its (unquantised) vector.
#[derive(Debug, Clone)]
pub struct Row {
    pub word: String,
    pub freq: u32,
    pub vector: Vec<f32>,
}

/// A loaded table. Immutable; share it behind an `Arc`.
#[derive(Debug)]
pub struct StaticTable {
    provenance: Provenance,
    dims: usize,
    index: HashMap<Box<str>, u32>,
    /// Per row: quantisation scale × SIF weight, so `embed` does one multiply per element.
    factor: Vec<f32>,
    vectors: Vec<i8>,
}

/// The segmenter, built once per process: loading jieba's dictionary takes ~100 ms and every
/// table uses the same one (its vocabulary was cut by it at distill time).
pub(crate) fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// The form words are looked up in: NFKC (full-width letters and digits become ASCII) and lower
/// case, so "ＥＲＰ" and "erp" are one word. Distillation stores words in the same form.
#[must_use]
pub fn normalise_text(text: &str) -> String {
    normalize_width(text).to_lowercase()
}

/// The words of a text as jieba cuts it (no HMM, the dictionary's words).
#[must_use]
pub fn words(text: &str) -> Vec<&str> {
    jieba()
        .cut(text, false)
        .into_iter()
        .map(|t| t.word)
        .collect()
}

/// Whether a jieba token is worth a vector: whitespace and punctuation carry no meaning.
#[must_use]
pub fn is_content_token(token: &str) -> bool {
    !token.is_empty()
        && !token.chars().any(char::is_whitespace)
        && token.chars().any(char::is_alphanumeric)
}

impl StaticTable {
    /// Reads and checks a table; anything short, corrupt or inconsistent is refused with
    /// [`EmbedError::Table`] naming the path.
    pub fn load(path: &Path) -> Result<Self, EmbedError> {
        let table_error = |source: TableError| EmbedError::Table {
            path: path.display().to_string(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|e| table_error(e.into()))?;
        Self::from_bytes(&bytes).map_err(table_error)
    }

    /// Parses a table held in memory; the error is the reason, without a path.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TableError> {
        let body = checked_body(bytes)?;
        let mut r = Reader { bytes: body, at: 4 };
        let (provenance, words, dims) = read_header(&mut r)?;
        let index = read_word_index(&mut r, words, dims)?;
        let factor = read_row_factors(&mut r, words)?;
        let vectors: Vec<i8> = r
            .take(words * dims)?
            .iter()
            .map(|b| i8::from_ne_bytes([*b]))
            .collect();
        Ok(Self {
            provenance,
            dims,
            index,
            factor,
            vectors,
        })
    }

    /// Serialises rows into the file format; every vector must have `provenance.dims` elements.
    pub fn to_bytes(provenance: &Provenance, rows: &[Row]) -> Result<Vec<u8>, TableError> {
        let dims = provenance.dims;
        if provenance.words != rows.len() {
            return Err(TableError::RowCount {
                provenance: provenance.words,
                rows: rows.len(),
            });
        }
        if dims == 0 || dims > MAX_DIMS {
            return Err(TableError::Dimensions(dims));
        }
        let header = serde_json::to_vec(provenance).map_err(TableError::Provenance)?;
        let mut blob = String::new();
        for row in rows {
            if !is_content_token(&row.word) || row.word.contains('\n') {
                return Err(TableError::Unstorable(row.word.clone()));
            }
            if row.vector.len() != dims || row.vector.iter().any(|x| !x.is_finite()) {
                return Err(TableError::BadVector {
                    word: row.word.clone(),
                    dims,
                });
            }
            blob.push_str(&row.word);
            blob.push('\n');
        }
        let len32 = |n: usize| u32::try_from(n).map_err(|_| TableError::TooLarge(n));
        let mut out = Vec::with_capacity(blob.len() + rows.len() * (dims + 8) + header.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&len32(header.len())?.to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&len32(rows.len())?.to_le_bytes());
        out.extend_from_slice(&len32(dims)?.to_le_bytes());
        out.extend_from_slice(&len32(blob.len())?.to_le_bytes());
        out.extend_from_slice(blob.as_bytes());
        for row in rows {
            out.extend_from_slice(&row.freq.to_le_bytes());
        }
        let quantised: Vec<(f32, Vec<i8>)> = rows.iter().map(|r| quantise(&r.vector)).collect();
        for (scale, _) in &quantised {
            out.extend_from_slice(&scale.to_le_bytes());
        }
        for (_, q) in &quantised {
            out.extend(q.iter().map(|v| v.to_ne_bytes()[0]));
        }
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        Ok(out)
    }

    /// Writes a table next to `path` and renames it into place, so a reader never sees half.
    pub fn write(path: &Path, provenance: &Provenance, rows: &[Row]) -> Result<u64, EmbedError> {
        let table_error = |source: TableError| EmbedError::Table {
            path: path.display().to_string(),
            source,
        };
        let bytes = Self::to_bytes(provenance, rows).map_err(table_error)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| table_error(e.into()))?;
        }
        let tmp = path.with_extension("kvec.tmp");
        std::fs::write(&tmp, &bytes).map_err(|e| table_error(e.into()))?;
        std::fs::rename(&tmp, path).map_err(|e| table_error(e.into()))?;
        Ok(bytes.len() as u64)
    }

    /// The sentence vector of `text`: SIF-weighted mean of its words' vectors, normalised; a word
    /// the table lacks counts through its characters; nothing known gives the zero vector.
    #[must_use]
    pub fn embed(&self, text: &str) -> Vector {
        let mut acc = vec![0.0f32; self.dims];
        let text = normalise_text(text);
        // No HMM: a new word it would guess is not in the table anyway and falls back to its
        // characters, so the guess only costs time.
        for token in jieba().cut(&text, false) {
            let word = token.word;
            if !is_content_token(word) {
                continue;
            }
            if let Some(&row) = self.index.get(word) {
                self.add_row(&mut acc, row);
                continue;
            }
            let mut buf = [0u8; 4];
            for c in word.chars() {
                if let Some(&row) = self.index.get(&*c.encode_utf8(&mut buf)) {
                    self.add_row(&mut acc, row);
                }
            }
        }
        normalise(&mut acc);
        acc
    }

    fn add_row(&self, acc: &mut [f32], row: u32) {
        let row = row as usize;
        let factor = self.factor[row];
        let start = row * self.dims;
        for (a, q) in acc.iter_mut().zip(&self.vectors[start..start + self.dims]) {
            *a += factor * f32::from(*q);
        }
    }

    /// Whether `word` (in normalised form) has its own row.
    #[must_use]
    pub fn contains(&self, word: &str) -> bool {
        self.index.contains_key(word)
    }

    #[must_use]
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Vocabulary size.
    #[must_use]
    pub fn words(&self) -> usize {
        self.index.len()
    }

    #[must_use]
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }
}

/// Symmetric int8 per row: the largest magnitude maps to ±127.
fn quantise(v: &[f32]) -> (f32, Vec<i8>) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (0.0, vec![0; v.len()]);
    }
    let scale = max / 127.0;
    // In range by construction: |x| ≤ max, so |x / scale| ≤ 127.
    #[allow(clippy::cast_possible_truncation)]
    let q = v
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (scale, q)
}
/// The table without its checksum, once its length, magic and checksum are right.
fn checked_body(bytes: &[u8]) -> Result<&[u8], TableError> {
    if bytes.len() < MAGIC.len() + 4 + CHECKSUM_LEN {
        return Err(TableError::TooShort(bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(TableError::BadMagic);
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
    if Sha256::digest(body).as_slice() != checksum {
        return Err(TableError::Checksum);
    }
    Ok(body)
}

/// Version, provenance, and the word and dimension counts, which must agree with it.
fn read_header(r: &mut Reader<'_>) -> Result<(Provenance, usize, usize), TableError> {
    let version = r.u32()?;
    if version != VERSION {
        return Err(TableError::Version {
            found: version,
            reads: VERSION,
        });
    }
    let header_len = r.u32()? as usize;
    if header_len > MAX_HEADER {
        return Err(TableError::HeaderTooLong(header_len));
    }
    let provenance: Provenance =
        serde_json::from_slice(r.take(header_len)?).map_err(TableError::Header)?;
    let words = r.u32()? as usize;
    let dims = r.u32()? as usize;
    if dims == 0 || dims > MAX_DIMS {
        return Err(TableError::Dimensions(dims));
    }
    if provenance.words != words || provenance.dims != dims {
        return Err(TableError::Counts {
            header_words: provenance.words,
            header_dims: provenance.dims,
            words,
            dims,
        });
    }
    Ok((provenance, words, dims))
}

/// The words, one per line, each once: the row of each word.
fn read_word_index(
    r: &mut Reader<'_>,
    words: usize,
    dims: usize,
) -> Result<HashMap<Box<str>, u32>, TableError> {
    let blob_len = r.u32()? as usize;
    // Check the whole remaining length before allocating anything sized by the header.
    let rest = words
        .checked_mul(dims + 8)
        .ok_or(TableError::SizeOverflow)?;
    if r.remaining() != blob_len.saturating_add(rest) {
        return Err(TableError::BodyLength {
            remaining: r.remaining(),
            words,
            dims,
        });
    }
    let blob = std::str::from_utf8(r.take(blob_len)?).map_err(TableError::Words)?;
    let mut index = HashMap::with_capacity(words);
    for (row, word) in blob.split_terminator('\n').enumerate() {
        if word.is_empty() {
            return Err(TableError::EmptyWord(row));
        }
        let row = u32::try_from(row).map_err(|_| TableError::TooManyWords)?;
        if index.insert(Box::from(word), row).is_some() {
            return Err(TableError::WordTwice(word.to_owned()));
        }
    }
    if index.len() != words {
        return Err(TableError::WordCount {
            listed: index.len(),
            words,
        });
    }
    Ok(index)
}

/// Each row's frequency and quantisation scale, folded into one factor: scale × SIF weight.
fn read_row_factors(r: &mut Reader<'_>, words: usize) -> Result<Vec<f32>, TableError> {
    let freqs: Vec<u32> = (0..words).map(|_| r.u32()).collect::<Result<_, _>>()?;
    let scales: Vec<f32> = (0..words).map(|_| r.f32()).collect::<Result<_, _>>()?;
    if scales.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err(TableError::BadScale);
    }
    let total: f64 = freqs.iter().map(|f| f64::from(*f)).sum::<f64>().max(1.0);
    Ok(freqs
        .iter()
        .zip(&scales)
        .map(|(f, s)| {
            let p = f64::from(*f) / total;
            // f32 is plenty: the weight only scales a row before the final normalisation.
            #[allow(clippy::cast_possible_truncation)]
            let w = (SIF_A / (SIF_A + p)) as f32;
            w * s
        })
        .collect())
}

/// A cursor that refuses to read past the end instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TableError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(TableError::Truncated(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn array4(&mut self) -> Result<[u8; 4], TableError> {
        let s = self.take(4)?;
        Ok([s[0], s[1], s[2], s[3]])
    }

    fn u32(&mut self) -> Result<u32, TableError> {
        self.array4().map(u32::from_le_bytes)
    }

    fn f32(&mut self) -> Result<f32, TableError> {
        self.array4().map(f32::from_le_bytes)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::cosine;

    fn provenance(words: usize, dims: usize) -> Provenance {
        Provenance {
            model: "test".into(),
            licence: "MIT".into(),
            command: "test".into(),
            date: "2026-01-01".into(),
            url: "http://127.0.0.1:1".into(),
            words,
            dims,
        }
    }

    fn row(word: &str, freq: u32, vector: &[f32]) -> Row {
        Row {
            word: word.into(),
            freq,
            vector: vector.to_vec(),
        }
    }

    fn tiny() -> Vec<Row> {
        vec![
            row("店铺", 100, &[1.0, 0.0, 0.0]),
            row("发票", 100, &[0.0, 1.0, 0.0]),
            row("的", 1_000_000, &[0.0, 0.0, 1.0]),
            row("店", 50, &[0.9, 0.1, 0.0]),
            row("票", 50, &[0.1, 0.9, 0.0]),
        ]
    }

    fn tiny_table() -> StaticTable {
        let rows = tiny();
        let bytes = StaticTable::to_bytes(&provenance(rows.len(), 3), &rows).unwrap_or_default();
        StaticTable::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trip_keeps_words_dims_and_provenance() {
        let table = tiny_table();
        assert_eq!(table.words(), 5);
        assert_eq!(table.dims(), 3);
        assert_eq!(table.provenance(), &provenance(5, 3));
        assert!(table.contains("店铺"));
    }

    #[test]
    fn frequent_words_weigh_less() {
        let table = tiny_table();
        // "的" is a thousand times more frequent: the mean leans to 店铺.
        let v = table.embed("店铺的");
        assert!(v[0] > 0.9, "{v:?}");
    }

    #[test]
    fn unknown_word_falls_back_to_its_characters() {
        let table = tiny_table();
        let v = table.embed("开店");
        assert!(cosine(&v, &table.embed("店铺")) > 0.9, "{v:?}");
    }

    #[test]
    fn unknown_text_is_the_zero_vector() {
        let table = tiny_table();
        assert_eq!(table.embed("xyz 你好！"), vec![0.0; 3]);
        assert_eq!(table.embed(""), vec![0.0; 3]);
    }

    #[test]
    fn every_truncation_and_a_flipped_bit_are_refused() {
        let rows = tiny();
        let bytes = StaticTable::to_bytes(&provenance(rows.len(), 3), &rows).unwrap_or_default();
        for len in 0..bytes.len() {
            assert!(StaticTable::from_bytes(&bytes[..len]).is_err(), "{len}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(StaticTable::from_bytes(&flipped).is_err());
    }

    #[test]
    fn quantisation_error_is_small() {
        let v = [0.3, -0.7, 0.01, 0.5];
        let (scale, q) = quantise(&v);
        for (x, q) in v.iter().zip(q) {
            assert!((x - scale * f32::from(q)).abs() <= scale / 2.0 + 1e-6);
        }
        assert_eq!(quantise(&[0.0, 0.0]), (0.0, vec![0, 0]));
    }

    #[test]
    fn unstorable_rows_are_refused() {
        let bad = vec![row("a\nb", 1, &[1.0, 0.0, 0.0])];
        assert!(StaticTable::to_bytes(&provenance(1, 3), &bad).is_err());
        let short = vec![row("店", 1, &[1.0])];
        assert!(StaticTable::to_bytes(&provenance(1, 3), &short).is_err());
    }
}
