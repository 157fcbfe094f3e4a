//! Understanding: which service a free-text message asks for. Local and pure; the index is
//! built once per catalog snapshot.
//!
//! - [`matcher`]: ranking services by their phrases (names, aliases, keywords) and the verdict;
//! - [`tuning`]: `dialogs/understanding.toml`, its word lists folded and checked at load;
//! - [`fold`]: the folding every comparison uses (width, case, punctuation, @mentions) and pinyin;
//! - [`report`]: the JSON `kaitong understand` prints (only the CLI uses it).
//!
//! Slot extraction is `dialog::slots`; the blend with meaning is `dialog::meaning`.
//! Must not touch: I/O beyond reading `understanding.toml` at load, conversation state.

mod fold;
mod matcher;
mod report;
mod tuning;

pub use fold::{fold, to_pinyin};
pub use matcher::{Matcher, Scored, Verdict};
pub use report::{CandidateRef, ServiceRef, UnderstandReport, report};
pub use tuning::{CommandWords, SmallTalk, Tuning, TuningError};
