//! Loading `dialogs/` into a validated [`Catalog`]: parse the raw TOML,
//! resolve field references, compile patterns, check conditions and
//! cross-service links. Every rejection names the file, line and reason.

use crate::domain::ServiceId;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;
use serde::de::DeserializeOwned;
use toml::Spanned;

use super::condition::Condition;
use super::loaded::Catalog;
use super::messages::{MessageKey, Messages};
use super::model::{
    AssumedValue, Assumption, Category, FieldKind, FieldSpec, FilingRoute, Guidance, Refusal,
    Service, ServiceField, Window,
};
use super::raw::{
    RawAssumption, RawCategoriesFile, RawChannelKind, RawCondition, RawConstraints, RawFieldHead,
    RawFieldRef, RawFieldsFile, RawOutcome, RawService,
};
use super::value::FieldKey;

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        reason: String,
    },
}

impl CatalogError {
    pub fn file(&self) -> &Path {
        match self {
            CatalogError::Io { file, .. } | CatalogError::Invalid { file, .. } => file,
        }
    }

    /// 1-based line, when the error concerns file content.
    pub fn line(&self) -> Option<usize> {
        match self {
            CatalogError::Io { .. } => None,
            CatalogError::Invalid { line, .. } => Some(*line),
        }
    }
}

type Result<T> = std::result::Result<T, CatalogError>;

/// One source file kept in memory so byte spans can become line numbers.
struct Src {
    path: PathBuf,
    text: String,
}

impl Src {
    fn read(path: PathBuf) -> Result<Self> {
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Self { path, text }),
            Err(source) => Err(CatalogError::Io { file: path, source }),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn err(&self, span: Range<usize>, reason: impl Into<String>) -> CatalogError {
        CatalogError::Invalid {
            file: self.path.clone(),
            line: self.line_of(span.start),
            reason: reason.into(),
        }
    }

    fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.err(span, e.message().trim().to_owned())
        })
    }
}

/// A library field: the resolved spec plus its raw constraints, which
/// services may override.
struct LibField {
    head: RawFieldHead,
    constraints: RawConstraints,
}

impl Catalog {
    /// Loads and validates `dir` (containing `messages.toml`,
    /// `categories.toml`, `fields.toml` and `services/*.toml`).
    pub fn load(dir: &Path) -> Result<Catalog> {
        load(dir)
    }
}

pub(super) fn load(dir: &Path) -> Result<Catalog> {
    let messages = Arc::new(load_messages(&dir.join("messages.toml"))?);
    let categories = load_categories(&dir.join("categories.toml"))?;
    let (library, fields) = load_fields(&dir.join("fields.toml"), &messages)?;

    let services_dir = dir.join("services");
    let entries = std::fs::read_dir(&services_dir).map_err(|source| CatalogError::Io {
        file: services_dir.clone(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();

    let category_keys: BTreeSet<&str> = categories.iter().map(|c| c.key.as_str()).collect();
    let mut services: BTreeMap<ServiceId, Service> = BTreeMap::new();
    // Spans of `related` entries, to report asymmetric links precisely.
    let mut related_spans: BTreeMap<ServiceId, Vec<(ServiceId, usize)>> = BTreeMap::new();
    for path in paths {
        let src = Src::read(path)?;
        let raw: RawService = src.parse()?;
        let id_span = raw.id.span();
        let id = ServiceId(*raw.id.get_ref());
        if id.0 == 0 {
            return Err(src.err(id_span, "service id must be ≥ 1"));
        }
        if let Some(prev) = services.get(&id) {
            return Err(src.err(
                id_span,
                format!(
                    "duplicate service id {id} (already in {})",
                    prev.source.display()
                ),
            ));
        }
        let rel: Vec<(ServiceId, usize)> = raw
            .related
            .iter()
            .map(|r| (ServiceId(*r.get_ref()), src.line_of(r.span().start)))
            .collect();
        let service = convert_service(raw, &src, &library, &messages, &category_keys)?;
        related_spans.insert(id, rel);
        services.insert(id, service);
    }

    check_related(&services, &related_spans)?;

    Ok(Catalog {
        services,
        fields,
        categories,
        messages,
        dir: dir.to_path_buf(),
    })
}

fn load_messages(path: &Path) -> Result<Messages> {
    let src = Src::read(path.to_path_buf())?;
    let map: BTreeMap<String, Spanned<String>> = src.parse()?;
    // The code names its texts by `MessageKey`: every one must be here, so a text the code
    // uses is never missing in chat.
    for key in MessageKey::ALL.iter().map(|k| k.as_str()) {
        match map.get(key) {
            None => {
                return Err(src.err(0..0, format!("required message key `{key}` is missing")));
            }
            Some(v) if v.get_ref().trim().is_empty() => {
                return Err(src.err(v.span(), format!("message `{key}` is empty")));
            }
            Some(_) => {}
        }
    }
    Ok(Messages::new(
        map.into_iter()
            .map(|(key, text)| (key, text.into_inner()))
            .collect(),
    ))
}

fn load_categories(path: &Path) -> Result<Vec<Category>> {
    let src = Src::read(path.to_path_buf())?;
    let raw: RawCategoriesFile = src.parse()?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in raw.category {
        let key = c.key.get_ref().clone();
        if !seen.insert(key.clone()) {
            return Err(src.err(c.key.span(), format!("duplicate category `{key}`")));
        }
        out.push(Category {
            key,
            name: c.name,
            description: c.description,
        });
    }
    Ok(out)
}

type Library = BTreeMap<FieldKey, LibField>;

fn load_fields(
    path: &Path,
    messages: &Arc<Messages>,
) -> Result<(Library, BTreeMap<FieldKey, FieldSpec>)> {
    let src = Src::read(path.to_path_buf())?;
    let raw: RawFieldsFile = src.parse()?;
    let mut library = Library::new();
    let mut specs = BTreeMap::new();
    for f in raw.field {
        let (head, constraints) = f.split();
        let key = FieldKey::parse(head.key.get_ref())
            .map_err(|e| src.err(head.key.span(), e.to_string()))?;
        if library.contains_key(&key) {
            return Err(src.err(head.key.span(), format!("duplicate field key `{key}`")));
        }
        let kind = build_kind(&head.kind, &constraints, &src)?;
        let spec = FieldSpec {
            key: key.clone(),
            label: head.label.clone(),
            prompt: head.prompt.clone(),
            example: head.example.clone(),
            help: head.help.clone(),
            cues: head.cues.clone(),
            yes_phrases: head.yes_phrases.clone(),
            no_phrases: head.no_phrases.clone(),
            synonyms: flat_synonyms(&head.synonyms),
            kind,
            sensitive: head.sensitive,
            prose: head.prose,
            name_like: head.name_like,
            other_allowed: false,
            messages: Arc::clone(messages),
        };
        specs.insert(key.clone(), spec);
        library.insert(key, LibField { head, constraints });
    }
    Ok((library, specs))
}

/// Library values take the span of the service's reference, so that an
/// inconsistency created by merging is reported in the service file.
fn respan<T: Clone>(v: &Option<Spanned<T>>, span: &Range<usize>) -> Option<Spanned<T>> {
    v.as_ref()
        .map(|s| Spanned::new(span.clone(), s.get_ref().clone()))
}

fn merge(lib: &RawConstraints, over: RawConstraints, at: &Range<usize>) -> RawConstraints {
    RawConstraints {
        min_chars: over.min_chars.or(lib.min_chars),
        max_chars: over.max_chars.or(lib.max_chars),
        pattern: over.pattern.or_else(|| respan(&lib.pattern, at)),
        pattern_hint: over.pattern_hint.or_else(|| lib.pattern_hint.clone()),
        min: over.min.or_else(|| respan(&lib.min, at)),
        max: over.max.or_else(|| respan(&lib.max, at)),
        default: over.default.or_else(|| respan(&lib.default, at)),
        allowed: over.allowed.or_else(|| respan(&lib.allowed, at)),
        unit: over.unit.or_else(|| lib.unit.clone()),
        options: over.options.or_else(|| respan(&lib.options, at)),
        template: over.template.or_else(|| lib.template.clone()),
        max_hours: over.max_hours.or_else(|| respan(&lib.max_hours, at)),
        max_items: over.max_items.or(lib.max_items),
    }
}

fn compile(pattern: &Spanned<String>, src: &Src) -> Result<Regex> {
    Regex::new(pattern.get_ref()).map_err(|e| {
        src.err(
            pattern.span(),
            format!("bad regex {:?}: {e}", pattern.get_ref()),
        )
    })
}

fn build_kind(kind: &Spanned<String>, c: &RawConstraints, src: &Src) -> Result<FieldKind> {
    let v = |s: &Option<Spanned<i64>>| s.as_ref().map(|s| *s.get_ref());
    Ok(match kind.get_ref().as_str() {
        "seller_account" => FieldKind::SellerAccount,
        "text" => text_kind(kind, c, src)?,
        "identifier" => {
            let Some(p) = &c.pattern else {
                return Err(src.err(kind.span(), "identifier field needs a `pattern`"));
            };
            FieldKind::Identifier {
                pattern: compile(p, src)?,
                hint: c.pattern_hint.clone().unwrap_or_default(),
            }
        }
        "email" => FieldKind::Email,
        "integer" => integer_kind(kind, c, src)?,
        "money" => FieldKind::Money {
            min_cents: v(&c.min).map(|m| m.saturating_mul(100)),
            max_cents: v(&c.max).map(|m| m.saturating_mul(100)),
        },
        "choice" | "multi_choice" => {
            let options = choice_options(kind, c, src)?;
            if kind.get_ref() == "choice" {
                FieldKind::SingleChoice { options }
            } else {
                FieldKind::MultiChoice { options }
            }
        }
        "yes_no" => FieldKind::YesNo,
        "attachment" => FieldKind::Attachment {
            template: c.template.clone(),
        },
        "id_list" => FieldKind::IdList {
            pattern: c.pattern.as_ref().map(|p| compile(p, src)).transpose()?,
            max_items: c.max_items,
        },
        "duration" => FieldKind::Duration {
            max_hours: c.max_hours.as_ref().map(|h| *h.get_ref()),
        },
        other => {
            return Err(src.err(kind.span(), format!("unknown field type `{other}`")));
        }
    })
}

fn text_kind(kind: &Spanned<String>, c: &RawConstraints, src: &Src) -> Result<FieldKind> {
    let min_chars = c.min_chars.unwrap_or(1);
    let max_chars = c.max_chars.unwrap_or(500);
    if min_chars > max_chars {
        return Err(src.err(kind.span(), "min_chars is greater than max_chars"));
    }
    Ok(FieldKind::Text {
        min_chars,
        max_chars,
    })
}

fn integer_kind(kind: &Spanned<String>, c: &RawConstraints, src: &Src) -> Result<FieldKind> {
    let v = |s: &Option<Spanned<i64>>| s.as_ref().map(|s| *s.get_ref());
    let (min, max, default) = (v(&c.min), v(&c.max), v(&c.default));
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        let span = c.max.as_ref().map_or(kind.span(), |s| s.span());
        return Err(src.err(span, format!("min {lo} is greater than max {hi}")));
    }
    let allowed = match &c.allowed {
        Some(a) if a.get_ref().is_empty() => {
            return Err(src.err(a.span(), "empty `allowed` list"));
        }
        Some(a) => a.get_ref().clone(),
        None => Vec::new(),
    };
    if let Some(ds) = &c.default {
        check_default_within_cap(ds, min, max, &allowed, src)?;
    }
    Ok(FieldKind::Integer {
        min,
        max,
        default,
        allowed,
        unit: c.unit.clone().unwrap_or_default(),
    })
}

/// A default the field itself would refuse could never be kept.
fn check_default_within_cap(
    default: &Spanned<i64>,
    min: Option<i64>,
    max: Option<i64>,
    allowed: &[i64],
    src: &Src,
) -> Result<()> {
    let d = *default.get_ref();
    let below = min.is_some_and(|m| d < m);
    let above = max.is_some_and(|m| d > m);
    let not_allowed = !allowed.is_empty() && !allowed.contains(&d);
    if below || above || not_allowed {
        return Err(src.err(
            default.span(),
            format!(
                "default {d} is outside the cap (min {min:?}, max {max:?}, allowed {allowed:?})"
            ),
        ));
    }
    Ok(())
}

/// The options of a choice field: present, not empty, no blank or repeated entries.
fn choice_options(kind: &Spanned<String>, c: &RawConstraints, src: &Src) -> Result<Vec<String>> {
    match &c.options {
        None => Err(src.err(kind.span(), "choice field needs `options`")),
        Some(o) if o.get_ref().is_empty() => Err(src.err(o.span(), "empty choice list")),
        Some(o) => {
            let list = o.get_ref().clone();
            let unique: BTreeSet<&String> = list.iter().collect();
            if unique.len() != list.len() || list.iter().any(|x| x.trim().is_empty()) {
                return Err(src.err(o.span(), "choice list has duplicate or blank options"));
            }
            Ok(list)
        }
    }
}

fn convert_service(
    raw: RawService,
    src: &Src,
    library: &Library,
    messages: &Arc<Messages>,
    categories: &BTreeSet<&str>,
) -> Result<Service> {
    let id = ServiceId(*raw.id.get_ref());
    check_names_and_category(&raw, src, categories)?;
    let channel = filing_route(&raw.channel, raw.channel_address, src)?;

    // Only the resource platform has the daily 16:00 batch; an OA ticket or an e-mail must say
    // what the seed says instead, so no receipt promises 17:30 for them.
    if !matches!(channel, FilingRoute::ResourcePlatform) && raw.window.is_none() {
        return Err(src.err(
            raw.channel.span(),
            "services filed by OA ticket or e-mail are not in the 16:00 batch: give `window`",
        ));
    }

    let mut fields: Vec<ServiceField> = Vec::new();
    for r in raw.fields {
        let field = convert_field(r, &fields, src, library, messages)?;
        fields.push(field);
    }
    let refusals = raw
        .refusals
        .iter()
        .map(|o| {
            convert_outcome(o, &fields, src).map(|(when, message)| Refusal {
                when,
                message,
                keep_form: o.keep_form,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let guidance = raw
        .guidance
        .iter()
        .map(|o| convert_outcome(o, &fields, src).map(|(when, message)| Guidance { when, message }))
        .collect::<Result<Vec<_>>>()?;
    let examples = checked_examples(raw.examples, src)?;
    let related = convert_related(&raw.related, id, src)?;
    let assumed = convert_assumptions(&raw.assumed, &fields, &channel, raw.handler.is_some(), src)?;

    Ok(Service {
        id,
        name: raw.name,
        seed_name: raw.seed_name,
        category: raw.category.into_inner(),
        team: raw.team,
        route: channel,
        window: match raw.window {
            None => Window::DailyBatch,
            Some(w) => Window::Custom(w),
        },
        handler: raw.handler,
        applicant: raw.applicant,
        aliases: raw.aliases,
        keywords: raw.keywords,
        examples,
        fields,
        preconditions: raw.preconditions,
        warnings: raw.warnings,
        refusals,
        guidance,
        related,
        notes: raw.notes,
        assumed,
        seed_notes: raw.seed_notes,
        source: src.path.clone(),
    })
}

fn check_names_and_category(
    raw: &RawService,
    src: &Src,
    categories: &BTreeSet<&str>,
) -> Result<()> {
    if raw.name.trim().is_empty() || raw.seed_name.trim().is_empty() {
        return Err(src.err(raw.id.span(), "`name` and `seed_name` must not be empty"));
    }
    if !categories.contains(raw.category.get_ref().as_str()) {
        return Err(src.err(
            raw.category.span(),
            format!("unknown category `{}`", raw.category.get_ref()),
        ));
    }
    Ok(())
}

/// Where the service is filed; only an e-mail route takes an address.
fn filing_route(
    channel: &Spanned<RawChannelKind>,
    address: Option<String>,
    src: &Src,
) -> Result<FilingRoute> {
    Ok(match (channel.get_ref(), address) {
        (RawChannelKind::Email, Some(address)) if address.contains('@') => FilingRoute::Email {
            address: Some(address),
        },
        (RawChannelKind::Email, Some(_)) => {
            return Err(src.err(
                channel.span(),
                "`channel_address` must be an e-mail address",
            ));
        }
        // The seed does not always name the mailbox (#10); no address is better than a copied one.
        (RawChannelKind::Email, None) => FilingRoute::Email { address: None },
        (_, Some(_)) => {
            return Err(src.err(
                channel.span(),
                "`channel_address` is only valid with channel = \"email\"",
            ));
        }
        (RawChannelKind::ResourcePlatform, None) => FilingRoute::ResourcePlatform,
        (RawChannelKind::OaTicket, None) => FilingRoute::OaTicket,
    })
}

/// One of a service's fields: the library field with the service's overrides applied;
/// `earlier` are the fields before it, the only ones its condition may name.
fn convert_field(
    r: RawFieldRef,
    earlier: &[ServiceField],
    src: &Src,
    library: &Library,
    messages: &Arc<Messages>,
) -> Result<ServiceField> {
    let (head, over) = r.split();
    let at = head.key.span();
    let key =
        FieldKey::parse(head.key.get_ref()).map_err(|e| src.err(at.clone(), e.to_string()))?;
    let Some(lib) = library.get(&key) else {
        return Err(src.err(at, format!("unknown field `{key}` (not in fields.toml)")));
    };
    if earlier.iter().any(|f| f.key() == &key) {
        return Err(src.err(at, format!("field `{key}` listed twice")));
    }
    let merged = merge(&lib.constraints, over, &at);
    let type_here = Spanned::new(at.clone(), lib.head.kind.get_ref().clone());
    let kind = build_kind(&type_here, &merged, src)?;
    let when = head
        .when
        .as_ref()
        .map(|w| convert_condition(w, earlier, src))
        .transpose()?;
    let other_allowed = other_allowed_flag(head.other_allowed.as_ref(), &kind, &key, src)?;
    let spec = FieldSpec {
        key,
        label: head.label.unwrap_or_else(|| lib.head.label.clone()),
        prompt: head.prompt.unwrap_or_else(|| lib.head.prompt.clone()),
        example: head.example.unwrap_or_else(|| lib.head.example.clone()),
        help: head.help.unwrap_or_else(|| lib.head.help.clone()),
        // The library label stays a cue when a service renames the field.
        cues: lib
            .head
            .cues
            .iter()
            .cloned()
            .chain(std::iter::once(lib.head.label.clone()))
            .collect(),
        yes_phrases: lib.head.yes_phrases.clone(),
        no_phrases: lib.head.no_phrases.clone(),
        synonyms: flat_synonyms(&lib.head.synonyms),
        kind,
        sensitive: lib.head.sensitive,
        prose: lib.head.prose,
        name_like: lib.head.name_like,
        other_allowed,
        messages: Arc::clone(messages),
    };
    check_example_obeys_rule(&spec, at, src)?;
    let asked = asked_flag(head.ask.as_ref(), head.optional, &spec.key, src)?;
    Ok(ServiceField {
        spec,
        required: !head.optional,
        asked,
        when,
    })
}

/// `other_allowed = true` only makes sense where there is a list to go beyond.
fn other_allowed_flag(
    flag: Option<&Spanned<bool>>,
    kind: &FieldKind,
    key: &FieldKey,
    src: &Src,
) -> Result<bool> {
    match flag {
        Some(flag)
            if *flag.get_ref()
                && !matches!(
                    kind,
                    FieldKind::SingleChoice { .. } | FieldKind::MultiChoice { .. }
                ) =>
        {
            Err(src.err(
                flag.span(),
                format!("`other_allowed` needs a choice field, `{key}` is not"),
            ))
        }
        Some(flag) => Ok(*flag.get_ref()),
        None => Ok(false),
    }
}

/// A prompt's example must satisfy the field's own rule (an example of 200 under a cap
/// of 50 teaches the wrong answer). Secrets and files have illustrative examples only.
fn check_example_obeys_rule(spec: &FieldSpec, at: Range<usize>, src: &Src) -> Result<()> {
    if !spec.example.is_empty()
        && !spec.sensitive
        && !matches!(spec.kind, FieldKind::Attachment { .. })
        && let Err(e) = spec.parse_answer(&spec.example)
    {
        return Err(src.err(
            at,
            format!(
                "example `{}` of field `{}` breaks its own rule: {}",
                spec.example, spec.key, e.message
            ),
        ));
    }
    Ok(())
}

/// A field never prompted cannot be required: nobody would ever be asked for it.
fn asked_flag(
    ask: Option<&Spanned<bool>>,
    optional: bool,
    key: &FieldKey,
    src: &Src,
) -> Result<bool> {
    match ask {
        Some(flag) if !*flag.get_ref() && !optional => Err(src.err(
            flag.span(),
            format!("`ask = false` needs `optional = true` on `{key}`"),
        )),
        Some(flag) => Ok(*flag.get_ref()),
        None => Ok(true),
    }
}

/// A refusal's or guidance's condition and its (non-empty) message.
fn convert_outcome(
    o: &RawOutcome,
    fields: &[ServiceField],
    src: &Src,
) -> Result<(Condition, String)> {
    if o.message.trim().is_empty() {
        return Err(src.err(o.when.span(), "empty message"));
    }
    Ok((convert_condition(&o.when, fields, src)?, o.message.clone()))
}

/// The example utterances, each real (two characters or more) and listed once.
fn checked_examples(raw: Spanned<Vec<String>>, src: &Src) -> Result<Vec<String>> {
    let examples_span = raw.span();
    let examples = raw.into_inner();
    for (i, e) in examples.iter().enumerate() {
        if e.trim().chars().count() < 2 {
            return Err(src.err(examples_span.clone(), format!("example {} is empty", i + 1)));
        }
        if examples[..i].contains(e) {
            return Err(src.err(
                examples_span.clone(),
                format!("example `{e}` is listed twice"),
            ));
        }
    }
    Ok(examples)
}

/// Related ids, none the service itself and none twice (existence is checked across files).
fn convert_related(raw: &[Spanned<u16>], id: ServiceId, src: &Src) -> Result<Vec<ServiceId>> {
    let mut related = Vec::new();
    for r in raw {
        let rid = ServiceId(*r.get_ref());
        if rid == id || related.contains(&rid) {
            return Err(src.err(r.span(), format!("related id {rid} is self or repeated")));
        }
        related.push(rid);
    }
    Ok(related)
}

/// Reads `[[assumed]]`: each names a value this service really has (a field's options, its
/// handler…), once, with a note saying why it is there.
fn convert_assumptions(
    raw: &[RawAssumption],
    fields: &[ServiceField],
    channel: &FilingRoute,
    has_handler: bool,
    src: &Src,
) -> Result<Vec<Assumption>> {
    let mut out: Vec<Assumption> = Vec::new();
    for a in raw {
        let span = a.what.span();
        let what = AssumedValue::parse(a.what.get_ref())
            .map_err(|e| src.err(span.clone(), e.to_string()))?;
        let field_kind = |k: &FieldKey| fields.iter().find(|f| f.key() == k).map(|f| &f.spec.kind);
        let exists = match &what {
            AssumedValue::Handler => has_handler,
            AssumedValue::RouteAddress => {
                matches!(channel, FilingRoute::Email { address: Some(_) })
            }
            AssumedValue::Options(k) => matches!(
                field_kind(k),
                Some(FieldKind::SingleChoice { .. } | FieldKind::MultiChoice { .. })
            ),
            AssumedValue::Cap(k) => matches!(field_kind(k), Some(FieldKind::Integer { .. })),
            _ => true,
        };
        if !exists {
            return Err(src.err(
                span,
                format!("assumed `{what}` names nothing this service has"),
            ));
        }
        if a.note.trim().is_empty() {
            return Err(src.err(span, format!("assumed `{what}` needs a `note` saying why")));
        }
        if out.iter().any(|o| o.what == what) {
            return Err(src.err(span, format!("assumed `{what}` is listed twice")));
        }
        out.push(Assumption {
            what,
            note: a.note.trim().to_owned(),
        });
    }
    Ok(out)
}

/// Converts a raw condition. `earlier` are the fields it may look at: for a
/// field's `when`, only fields asked before it; for refusals and guidance,
/// all of the service's fields.
fn convert_condition(
    raw: &Spanned<RawCondition>,
    earlier: &[ServiceField],
    src: &Src,
) -> Result<Condition> {
    let span = raw.span();
    let c = raw.get_ref();
    let ops = [
        c.equals.is_some(),
        c.any_of.is_some(),
        c.contains.is_some(),
        c.is.is_some(),
        c.gt.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let Some(field_name) = &c.field else {
        return match (c.always, ops) {
            (Some(true), 0) => Ok(Condition::Always),
            _ => Err(src.err(
                span,
                "condition needs `field` and one operator, or `always = true`",
            )),
        };
    };
    if c.always.is_some() || ops != 1 {
        return Err(src.err(
            span,
            "condition needs exactly one of equals / any_of / contains / is / gt",
        ));
    }
    let fspan = field_name.span();
    let key =
        FieldKey::parse(field_name.get_ref()).map_err(|e| src.err(fspan.clone(), e.to_string()))?;
    let Some(target) = earlier.iter().find(|f| f.key() == &key) else {
        return Err(src.err(
            fspan,
            format!("condition references unknown or later field `{key}`"),
        ));
    };
    let on = ConditionTarget {
        key,
        kind: &target.spec.kind,
        span,
        src,
    };
    on.operator(c)
}

/// The field a condition tests, with what is needed to word a rejection.
struct ConditionTarget<'a> {
    key: FieldKey,
    kind: &'a FieldKind,
    span: Range<usize>,
    src: &'a Src,
}

impl ConditionTarget<'_> {
    /// The condition for the one operator `c` has, checked against the field's type.
    fn operator(self, c: &RawCondition) -> Result<Condition> {
        let field = self.key.clone();
        if let Some(value) = &c.equals {
            self.check_option(value, false)?;
            return Ok(Condition::Equals {
                field,
                value: value.clone(),
            });
        }
        if let Some(values) = &c.any_of {
            if values.is_empty() {
                return Err(self.src.err(self.span, "empty `any_of` list"));
            }
            for v in values {
                self.check_option(v, false)?;
            }
            return Ok(Condition::AnyOf {
                field,
                values: values.clone(),
            });
        }
        if let Some(value) = &c.contains {
            self.check_option(value, true)?;
            return Ok(Condition::Contains {
                field,
                value: value.clone(),
            });
        }
        if let Some(value) = c.is {
            if !matches!(self.kind, FieldKind::YesNo) {
                let reason = format!("`is` needs a yes/no field, `{field}` is not");
                return Err(self.src.err(self.span, reason));
            }
            return Ok(Condition::Is { field, value });
        }
        if let Some(value) = c.gt {
            if !matches!(
                self.kind,
                FieldKind::Integer { .. } | FieldKind::Money { .. } | FieldKind::Duration { .. }
            ) {
                let reason = format!("`gt` needs a numeric field, `{field}` is not");
                return Err(self.src.err(self.span, reason));
            }
            return Ok(Condition::GreaterThan { field, value });
        }
        Err(self.src.err(self.span, "condition has no operator"))
    }

    /// `value` must be one of the field's options (`multi`: of a multi-choice field); text
    /// fields take any value.
    fn check_option(&self, value: &str, multi: bool) -> Result<()> {
        let key = &self.key;
        let options = match (self.kind, multi) {
            (FieldKind::SingleChoice { options }, false)
            | (FieldKind::MultiChoice { options }, true) => options,
            (FieldKind::Text { .. } | FieldKind::Identifier { .. }, false) => return Ok(()),
            _ => {
                return Err(self.src.err(
                    self.span.clone(),
                    format!(
                        "operator does not fit the type of field `{key}` ({})",
                        self.kind.type_name()
                    ),
                ));
            }
        };
        if options.iter().any(|o| o == value) {
            Ok(())
        } else {
            Err(self.src.err(
                self.span.clone(),
                format!("`{value}` is not an option of field `{key}`"),
            ))
        }
    }
}

/// Related services must exist and link back (near-duplicates are shown
/// to the user from either side).
fn check_related(
    services: &BTreeMap<ServiceId, Service>,
    spans: &BTreeMap<ServiceId, Vec<(ServiceId, usize)>>,
) -> Result<()> {
    for (id, links) in spans {
        let Some(service) = services.get(id) else {
            continue;
        };
        for (other, line) in links {
            let err = |reason: String| CatalogError::Invalid {
                file: service.source.clone(),
                line: *line,
                reason,
            };
            match services.get(other) {
                None => return Err(err(format!("related service {other} does not exist"))),
                Some(o) if !o.related.contains(id) => {
                    return Err(err(format!(
                        "related service {other} does not list {id} back (in {})",
                        o.source.display()
                    )));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// `{ option = [words] }` → (word, option) pairs, longest word first.
fn flat_synonyms(map: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = map
        .iter()
        .flat_map(|(option, words)| words.iter().map(move |w| (w.clone(), option.clone())))
        .collect();
    out.sort_by_key(|(w, _)| std::cmp::Reverse(w.chars().count()));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A copy of `dialogs/` (what the catalog reads) with `messages.toml` as given.
    fn dialogs_with_messages(messages: &str) -> tempfile::TempDir {
        let dialogs = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
        let dir = tempfile::tempdir().unwrap();
        for file in ["categories.toml", "fields.toml"] {
            std::fs::copy(dialogs.join(file), dir.path().join(file)).unwrap();
        }
        std::fs::create_dir(dir.path().join("services")).unwrap();
        for entry in std::fs::read_dir(dialogs.join("services")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap();
            std::fs::copy(&path, dir.path().join("services").join(name)).unwrap();
        }
        std::fs::write(dir.path().join("messages.toml"), messages).unwrap();
        dir
    }

    #[test]
    fn a_message_the_code_uses_fails_the_load_when_missing_or_empty() {
        let messages = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs/messages.toml"),
        )
        .unwrap();
        let dir = dialogs_with_messages(&messages);
        assert!(Catalog::load(dir.path()).is_ok());

        // 返回's answer: used by the engine, once missing from the hand-kept list.
        assert!(MessageKey::ALL.contains(&MessageKey::BackDone));
        let without: String = messages
            .lines()
            .filter(|line| !line.starts_with("back_done "))
            .map(|line| format!("{line}\n"))
            .collect();
        let dir = dialogs_with_messages(&without);
        let error = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("messages.toml:1:") && error.contains("`back_done` is missing"),
            "{error}"
        );

        let emptied = messages.replace("back_done = \"已返回上一步。\"", "back_done = \" \"");
        assert_ne!(emptied, messages);
        let line = emptied
            .lines()
            .position(|line| line.starts_with("back_done "))
            .unwrap()
            + 1;
        let dir = dialogs_with_messages(&emptied);
        let error = Catalog::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&format!("messages.toml:{line}:"))
                && error.contains("`back_done` is empty"),
            "{error}"
        );
    }
}
