//! `dialogs/understanding.toml`: the knobs and word lists of understanding, folded once at
//! load and checked (the chat command words), and the whole-message word tests built on them.

use crate::dialog::text::fold;

/// `dialogs/understanding.toml`: the knobs and word lists of understanding.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    pub generic_words: Vec<String>,
    pub question_markers: Vec<String>,
    pub request_markers: Vec<String>,
    /// Words that interrupt a free-text answer with another request ("等下", "先", "另外").
    pub interrupt_markers: Vec<String>,
    /// Words that correct the service named before them in the same message ("电子发票 额
    /// 不对 是物流追踪"): what follows the last one is what the person wants.
    #[serde(default)]
    pub correction_markers: Vec<String>,
    pub question_discount: f32,
    pub min_score: f32,
    pub close_call: f32,
    pub greetings: Vec<String>,
    pub thanks: Vec<String>,
    pub acknowledgements: Vec<String>,
    pub commands: CommandWords,
    pub slots: crate::dialog::slots::SlotWords,
    /// How a whole message is cut into requests (clauses, corrections, shared values).
    #[serde(default)]
    pub reading: ReadingWords,
    /// Status, "my requests" and withdrawal in plain words.
    pub plain_commands: crate::dialog::commands::PlainWords,
    /// The words of the chat commands about filed requests (查询, 撤回, 完成 …).
    pub chat_commands: crate::dialog::commands::ChatWords,
    /// The hybrid with meaning; without it understanding is by words alone.
    #[serde(default)]
    pub meaning: Option<MeaningTuning>,
    /// A one-character cue (开, 提, 调 …) counts only as a word of its own, or followed by one
    /// of these ("开个", "调下"): never inside another word (提 in 提交, 开 in 开通).
    #[serde(default)]
    pub cue_word_endings: Vec<String>,
    /// Words that ask how ("怎么", "如何"): the word right after one is what is asked about,
    /// not a request ("怎么调" asks; it requests nothing).
    #[serde(default)]
    pub how_words: Vec<String>,
    /// The learned ranking over the in-process space (`dialog::learned`).
    #[serde(default)]
    pub learned: Option<LearnedTuning>,
}

/// `[learned]` in `dialogs/understanding.toml`: the trained weights' file and the thresholds
/// of the decision, calibrated on the wording set's dev half.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedTuning {
    /// The weights file, relative to the dialogs folder.
    pub weights: String,
    /// A service whose probability is at least this is taken without asking.
    pub take: f64,
    /// Below this probability that the message asks for any service at all, it is out of
    /// scope; at or above it (and no service taken) a short list is offered.
    pub offer: f64,
    /// The list holds the best services until they cover this share of the services' mass
    /// (2–4 of them).
    pub offer_cover: f64,
    /// Whether a clear winner by words alone (`[meaning] clear_lexical_score`) still decides
    /// before the model.
    #[serde(default)]
    pub words_decide_when_clear: bool,
    /// The weights, read at load.
    #[serde(skip)]
    pub model: Option<crate::dialog::learned::Weights>,
}

/// Word lists for reading a message (`[reading]` in `dialogs/understanding.toml`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingWords {
    /// Words that join two requests: a new clause starts after them ("还有", "另外", "和").
    pub connectives: Vec<String>,
    /// Words that begin with a connective's character but join nothing ("跟踪", "及时").
    pub connective_exceptions: Vec<String>,
    /// A clause opening with one of these replaces the service named before it ("哦不", "算了
    /// 还是", "不是").
    pub service_corrections: Vec<String>,
    /// A clause holding one of these takes back the service it names ("先别开", "不要了").
    pub withdrawals: Vec<String>,
    /// A clause holding one of these gives its values to every request ("账号都是 X", "原因都是").
    pub shared_markers: Vec<String>,
    /// Right before the form's own service name, one of these disowns it ("不是电子发票").
    pub negations: Vec<String>,
    /// The lexical score from which a clause that names no service but clearly describes one
    /// (a single candidate) starts a request of its own.
    pub described_min_score: f32,
    /// A clause that only describes a service must also ask for something: one of these.
    pub request_markers: Vec<String>,
    /// Inside a form, a withdrawal that names no service and is at most this long (without
    /// spaces) takes back the form itself ("客户说先不开了"); a longer one may be a reason.
    #[serde(default)]
    pub bare_withdrawal_max_chars: usize,
    /// A clause ending in one of these is a question ("能当天好吗").
    #[serde(default)]
    pub question_endings: Vec<String>,
    /// A clause holding one of these asks when the request will be done ("多久能好").
    #[serde(default)]
    pub when_questions: Vec<String>,
    /// A message holding one of these asks about a service (its price, its difference from
    /// another, its effects) rather than for it …
    #[serde(default)]
    pub info_question_markers: Vec<String>,
    /// … unless it also holds one of these, which ask for it outright.
    #[serde(default)]
    pub outright_request_words: Vec<String>,
    /// "有哪些服务能开": a question about the catalog itself, answered with its list.
    #[serde(default)]
    pub catalog_questions: Vec<String>,
    /// "辅助单位数量放到400 货品能指定的仓库数也调到80": a clause that sets a number with one of
    /// these and then, after words of its own, sets another is two requests, cut after the
    /// first number (unless a correction stands between them).
    #[serde(default)]
    pub amount_split_cues: Vec<String>,
    /// "为啥要免责声明", "仓库子类型是啥意思": where a field is asked, a why or what-is question;
    /// answered with the help of the field it names (else the asked one's), never a value.
    #[serde(default)]
    pub why_words: Vec<String>,
    /// A question holding one of these ("有风险吗", "能试用吗") is answered with the service's
    /// warnings.
    #[serde(default)]
    pub warning_questions: Vec<String>,
    /// Words that may stand before a withdrawal that withdraws on its own ("客户说先不开了").
    #[serde(default)]
    pub withdrawal_leads: Vec<String>,
    /// Right before a withdrawal, one of these makes it one whatever came before ("客户说不够
    /// 就先不弄了").
    #[serde(default)]
    pub withdrawal_consequences: Vec<String>,
    /// In a correction, words that point at an earlier request by its place in the message
    /// ("第一个店写错了", "后面那个改成300"): place 1 is the first request, 0 the last one.
    #[serde(default)]
    pub ordinal_references: std::collections::BTreeMap<String, usize>,
}

/// Words for the conversation commands; each list holds whole-message forms.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandWords {
    pub cancel: Vec<String>,
    pub back: Vec<String>,
    pub skip: Vec<String>,
    pub help: Vec<String>,
    pub confirm: Vec<String>,
    pub edit: Vec<String>,
    pub yes: Vec<String>,
    pub no: Vec<String>,
    pub resume: Vec<String>,
    /// Answers to "switch to the other service?": switch now, queue it, or keep filling.
    pub switch: Vec<String>,
    pub later: Vec<String>,
    /// At a file question: the file comes later ("等下发", "先放着"); the form waits for it.
    pub file_later: Vec<String>,
    /// At any other question: the person goes to find the answer ("等下 我问下客户"); the
    /// words are no answer and the form waits.
    #[serde(default)]
    pub answer_later: Vec<String>,
    /// Right after 取消: the cancel was a misclick ("点错了 不取消"); the form comes back.
    #[serde(default)]
    pub undo_cancel: Vec<String>,
    /// Right after filing: the same request again ("一样的 给 X 也开"), for the account named.
    #[serde(default)]
    pub same_again: Vec<String>,
    pub keep: Vec<String>,
    /// "已确认" and the like: never a new request when nothing waits for confirmation.
    pub confirm_like: Vec<String>,
    /// Plain yeses that confirm a summary of a service that can be undone ("好的", "ok").
    #[serde(default)]
    pub plain_yes: Vec<String>,
    /// Words in a service's warnings that say it cannot be undone: its summary needs 「确认」.
    #[serde(default)]
    pub irreversible_markers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TuningError {
    pub path: String,
    pub reason: String,
}

impl Tuning {
    /// Loads `understanding.toml` from the dialogs folder, with the learned ranking's weights.
    pub fn load(dir: &std::path::Path) -> Result<Self, TuningError> {
        Self::load_with(dir, true)
    }

    /// Loads `understanding.toml`; without `read_weights` the learned ranking is left out
    /// (training reads everything but the weights it is about to write).
    pub fn load_with(dir: &std::path::Path, read_weights: bool) -> Result<Self, TuningError> {
        let path = dir.join("understanding.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| TuningError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut tuning: Tuning = toml::from_str(&text).map_err(|e| TuningError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let c = &mut tuning.commands;
        for list in [
            &mut tuning.generic_words,
            &mut tuning.greetings,
            &mut tuning.thanks,
            &mut tuning.acknowledgements,
            &mut c.cancel,
            &mut c.back,
            &mut c.skip,
            &mut c.help,
            &mut c.confirm,
            &mut c.edit,
            &mut c.yes,
            &mut c.no,
            &mut c.resume,
            &mut c.switch,
            &mut c.later,
            &mut c.file_later,
            &mut c.answer_later,
            &mut c.undo_cancel,
            &mut c.same_again,
            &mut c.keep,
            &mut c.confirm_like,
            &mut c.plain_yes,
            &mut tuning.interrupt_markers,
            &mut tuning.correction_markers,
            // The reading compares these with folded pieces.
            &mut tuning.reading.service_corrections,
            &mut tuning.reading.withdrawals,
            &mut tuning.reading.withdrawal_leads,
            &mut tuning.reading.withdrawal_consequences,
            &mut tuning.reading.shared_markers,
            &mut tuning.reading.negations,
            // Folded here once, not per message (`commands::parse_plain` compares as they are).
            &mut tuning.plain_commands.status,
            &mut tuning.plain_commands.mine,
            &mut tuning.plain_commands.cancel,
            &mut tuning.plain_commands.why_rejected,
            &mut tuning.plain_commands.resubmit,
            &mut tuning.plain_commands.cancel_verbs,
            &mut tuning.plain_commands.request_nouns,
            &mut tuning.plain_commands.own_request_refs,
            &mut tuning.plain_commands.status_endings,
        ] {
            for word in list.iter_mut() {
                *word = fold(word);
            }
        }
        if !read_weights {
            tuning.learned = None;
        }
        if let Some(learned) = tuning.learned.as_mut() {
            let file = dir.join(&learned.weights);
            let text = std::fs::read_to_string(&file).map_err(|e| TuningError {
                path: file.display().to_string(),
                reason: e.to_string(),
            })?;
            learned.model = Some(crate::dialog::learned::Weights::parse(&text).map_err(
                |reason| TuningError {
                    path: file.display().to_string(),
                    reason,
                },
            )?);
        }
        tuning.chat_commands = std::mem::take(&mut tuning.chat_commands)
            .checked()
            .map_err(|reason| TuningError {
                path: path.display().to_string(),
                reason,
            })?;
        Ok(tuning)
    }

    /// Whether the whole message is one of `words`.
    #[must_use]
    pub fn is(words: &[String], text: &str) -> bool {
        // One fold, not two (`core` folds too); a turn asks this of a dozen word lists.
        let folded = fold(text);
        let core = core_of(&folded);
        // "哦那就不用了": an interjection before the words says nothing of its own.
        let lead = folded.trim_start_matches(LEADING_INTERJECTIONS);
        let lead_core = core_of(lead);
        words.iter().any(|w| {
            w == core || *w == folded || (!lead.is_empty() && (w == lead || w == lead_core))
        })
    }

    /// Whether the whole message is a greeting or a thank-you (trailing particles ignored).
    #[must_use]
    pub fn small_talk(&self, text: &str) -> Option<SmallTalk> {
        let folded = fold(text);
        let core = folded.trim_end_matches(['啊', '呀', '哈', '呢', '吧', '哦', '了', '啦', '~']);
        if core.is_empty() {
            return None;
        }
        if self.greetings.iter().any(|g| g == core || g == &folded) {
            Some(SmallTalk::Greeting)
        } else if self.thanks.iter().any(|t| t == core || t == &folded) {
            Some(SmallTalk::Thanks)
        } else if self
            .acknowledgements
            .iter()
            .any(|t| t == core || t == &folded)
        {
            Some(SmallTalk::Acknowledgement)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallTalk {
    Greeting,
    Thanks,
    Acknowledgement,
}

/// A folded message without trailing particles (the whole folded text if nothing else is left).
/// Interjections that open a message without changing what it says.
const LEADING_INTERJECTIONS: [char; 9] = ['哦', '噢', '喔', '额', '呃', '嗯', '哎', '诶', '啊'];

fn core_of(folded: &str) -> &str {
    let core = folded.trim_end_matches(['啊', '呀', '哈', '呢', '吧', '哦', '了', '啦', '~']);
    if core.is_empty() { folded } else { core }
}

/// `[meaning]` in `dialogs/understanding.toml`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeaningTuning {
    /// A lexical winner this strong (and clear of the runner-up) is never overruled.
    pub clear_lexical_score: f32,
    /// Weights of the blend: best example similarity, catalog-passage similarity, and the
    /// lexical score relative to the best lexical score.
    pub example_weight: f32,
    pub catalog_weight: f32,
    pub lexical_weight: f32,
    /// A service's example similarity is the mean of its best `example_top_k` examples: one
    /// stray example close to the message is weaker evidence than two.
    #[serde(default = "one")]
    pub example_top_k: usize,
    /// Weight of the examples' words (TF-IDF of character n-grams, mean of the best
    /// `example_top_k`): shared everyday words are strong evidence the model may miss.
    #[serde(default)]
    pub example_words_weight: f32,
    /// Per space ("static" for the in-process table, "server" for a real model): the blended
    /// score a winner needs, the lead it needs over the runner-up, and the score below which
    /// nothing is offered (out of scope, small talk).
    pub static_space: SpaceThresholds,
    pub server_space: SpaceThresholds,
}

#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpaceThresholds {
    pub accept: f32,
    pub margin: f32,
    pub offer: f32,
}

fn one() -> usize {
    1
}
