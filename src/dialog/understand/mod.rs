//! Understanding: which service a free-text message asks for. Local and pure; the index is
//! built once per catalog snapshot.
//!
//! - [`matcher`]: ranking services by their phrases (names, aliases, keywords) and the verdict;
//! - [`tuning`]: `dialogs/understanding.toml`, its word lists folded and checked at load;
//!
//! Folding and pinyin are `dialog::text`, shared with commands and meaning; the JSON
//! `kaitong understand` prints is `tools::understand_report`.
//!
//! Slot extraction is `dialog::slots`; the blend with meaning is `dialog::meaning`.
//! Must not touch: I/O beyond reading `understanding.toml` at load, conversation state.

mod matcher;
mod tuning;

pub use matcher::{Matcher, Scored, Verdict};
pub use tuning::{
    CommandWords, LearnedTuning, MeaningTuning, ReadingWords, SmallTalk, SpaceThresholds, Tuning,
    TuningError,
};
