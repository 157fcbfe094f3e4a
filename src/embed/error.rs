//! Why an embedding could not be had: the server's failures, a refused table, a distillation
//! that could not finish. Owns the error types only; who falls back on them is `dialog`.

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding server unreachable or slow: {0}")]
    Unavailable(String),
    #[error("embedding server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("embedding server answered garbage: {0}")]
    Garbage(String),
    /// The answer was longer than any honest answer to the request could be.
    #[error("embedding server answer too large (over {cap} bytes); not read further")]
    TooLarge { cap: usize },
    #[error("embedding table {path}: {source}")]
    Table {
        path: String,
        #[source]
        source: TableError,
    },
    #[error("distillation: {0}")]
    Distill(String),
}

impl EmbedError {
    /// The same failure for another caller of one batch (the error itself cannot be cloned:
    /// the table's carries an I/O error, which a server call never returns).
    #[must_use]
    pub fn for_another_caller(&self) -> Self {
        match self {
            Self::Unavailable(s) => Self::Unavailable(s.clone()),
            Self::Status { status, body } => Self::Status {
                status: *status,
                body: body.clone(),
            },
            Self::TooLarge { cap } => Self::TooLarge { cap: *cap },
            Self::Garbage(s) => Self::Garbage(s.clone()),
            other => Self::Garbage(other.to_string()),
        }
    }
}

/// Why a table is refused when read, or rows cannot be written as one. Without a path:
/// [`EmbedError::Table`] adds it.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Reading, writing or renaming the file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0} bytes is too short to be a table")]
    TooShort(usize),
    #[error("not a kvec table (bad magic)")]
    BadMagic,
    #[error("checksum mismatch (truncated or corrupt)")]
    Checksum,
    #[error("format version {found}, this build reads {reads}")]
    Version { found: u32, reads: u32 },
    #[error("provenance header of {0} bytes")]
    HeaderTooLong(usize),
    #[error("provenance header: {0}")]
    Header(#[source] serde_json::Error),
    /// The provenance could not be written as JSON.
    #[error(transparent)]
    Provenance(serde_json::Error),
    #[error("{0} dimensions")]
    Dimensions(usize),
    #[error("header says {header_words} words × {header_dims} dims, body {words} × {dims}")]
    Counts {
        header_words: usize,
        header_dims: usize,
        words: usize,
        dims: usize,
    },
    #[error("size overflow")]
    SizeOverflow,
    #[error("{remaining} bytes of body for {words} words × {dims} dims")]
    BodyLength {
        remaining: usize,
        words: usize,
        dims: usize,
    },
    #[error("words: {0}")]
    Words(#[source] std::str::Utf8Error),
    #[error("empty word at row {0}")]
    EmptyWord(usize),
    #[error("too many words")]
    TooManyWords,
    #[error("word {0:?} twice")]
    WordTwice(String),
    #[error("{listed} words listed, header says {words}")]
    WordCount { listed: usize, words: usize },
    #[error("a row scale is negative or not finite")]
    BadScale,
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("provenance says {provenance} words, {rows} rows")]
    RowCount { provenance: usize, rows: usize },
    #[error("word {0:?} cannot be stored")]
    Unstorable(String),
    #[error("vector of {word:?} is not {dims} finite values")]
    BadVector { word: String, dims: usize },
    #[error("{0} does not fit a u32")]
    TooLarge(usize),
}
