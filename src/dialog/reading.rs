//! The reading of one message, before any state logic: which requests it makes and which part
//! of the text belongs to each.
//!
//! A hurried message asks for several things at once ("赠品策略上限调到2000 订单合并上限调到100
//! 账号 X", "a_shop1开电子发票 b_shop2开物流追踪"). Read as one text, the values of one request
//! land in another. Here the message is cut into clauses — at punctuation, at connectives
//! (还有/另外/然后 …) and, where two services are named, at the spaces between them and at a
//! new customer account — and every clause that names a service plainly starts a request;
//! clauses that name none belong to the request before them (or, before the first, to the
//! first). Each request then reads its values from its own clauses only, so no value crosses
//! from one request to another. A clause that corrects ("哦不 物流追踪", "算了 还是 X") replaces
//! the service before it; a clause that takes a service back ("电子发票先别开了") drops it.
//! Request numbers anywhere in the text are references, never requests.
//!
//! Pure: no I/O. The word lists are `[reading]` in `dialogs/understanding.toml`.
//! Must not touch: the form state machine (the engine decides what a reading means in a state).

use std::sync::LazyLock;

use regex::Regex;

use super::slots::{SlotWords, extract};
use super::text::{TRAILING_PARTICLES, fold};
use super::understand::{Matcher, ReadingWords, Verdict};
use crate::catalog::Catalog;
use crate::catalog::value::{is_han, is_seller_account, normalize_width};
use crate::domain::{RequestId, ServiceId};

/// One request the message makes: its service, the text its values are read from, and the
/// seller account it is for when the message says.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub service: ServiceId,
    pub text: String,
    pub account: Option<String>,
}

/// What one message says, read whole. Request numbers in it are [`references`], answered
/// before a message reaches the reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// The requests, in the order they were named.
    pub plan: Vec<Planned>,
    /// Services named and then corrected away or taken back.
    pub dropped: Vec<Dropped>,
    /// Words for a customer that name or describe no service: not filed, and said so.
    pub unread: Vec<String>,
    /// Questions asked on the way ("这个多久能好?"): never a value, answered.
    pub questions: Vec<String>,
}

/// A service the message named and then took back: corrected to another (`instead`) or
/// withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub service: ServiceId,
    pub instead: Option<ServiceId>,
}

static REQUEST_NUMBER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)kt-?(\d{8})-?(\d{1,4})").ok());

/// The request numbers a text names ("查一下 KT-20261206-0002 到哪了").
#[must_use]
pub fn references(text: &str) -> Vec<RequestId> {
    let text = normalize_width(text);
    let Some(re) = REQUEST_NUMBER.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<RequestId> = Vec::new();
    for c in re.captures_iter(&text) {
        let (Some(date), Some(seq)) = (c.get(1), c.get(2)) else {
            continue;
        };
        if let Some(id) = RequestId::parse(&format!("KT-{}-{}", date.as_str(), seq.as_str()))
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

/// Sets a message's questions apart from the rest ("客户要对物流费用 这个多久能好啊" →
/// "客户要对物流费用", ["这个多久能好啊"]): clauses that end with a question mark or particle or
/// ask when. Where a free-text answer is asked, a question is answered, never the answer.
#[must_use]
pub fn questions_apart(text: &str, words: &ReadingWords) -> (String, Vec<String>) {
    let text = normalize_width(text);
    let mut rest: Vec<String> = Vec::new();
    let mut questions: Vec<String> = Vec::new();
    // Clauses are cut at question marks, so a piece here never ends with one.
    let asks_itself = |piece: &str| asks_itself(words, piece);
    let han = |piece: &str| piece.chars().filter(|c| is_han(*c)).count();
    for clause in clauses(&text, words, &[]) {
        if !clause.question && !asks_itself(&clause.text) {
            rest.push(clause.text.trim().to_owned());
            continue;
        }
        // "客户要对物流费用 这个多久能好啊": the words before the asking piece stay the answer,
        // except a short lead-in of the question ("这个", "请问").
        let pieces: Vec<&str> = clause.text.split_whitespace().collect();
        let mut from = pieces
            .iter()
            .position(|p| asks_itself(p))
            .unwrap_or(pieces.len().saturating_sub(1));
        while from > 0 && han(pieces[from - 1]) < 3 {
            from -= 1;
        }
        if from > 0 {
            rest.push(pieces[..from].join(" "));
        }
        questions.push(pieces[from..].join(" "));
    }
    if questions.is_empty() {
        return (text.trim().to_owned(), questions);
    }
    (rest.join("，"), questions)
}

/// A piece of the message between two cuts.
#[derive(Debug, Clone)]
struct Piece {
    text: String,
    /// The piece opens a new clause (after punctuation or a connective), not only a space.
    clause_start: bool,
    /// The index of its clause.
    clause: usize,
}

/// A clause of the message: the text between two cuts at punctuation or connectives.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    text: String,
    /// It follows a connective (还有/另外/顺便 …): it joins another request to the message.
    joined: bool,
    /// It ends with a question mark or a question particle, or asks when ("多久能好").
    question: bool,
}

/// A request being gathered: its service and the pieces that belong to it.
#[derive(Debug, Clone)]
struct Group {
    service: ServiceId,
    pieces: Vec<String>,
    /// Its first clause follows a connective ("… 还有订单合并上限调到150").
    joined: bool,
    /// Words said for every request named so far ("原因都是 …"), not for later ones.
    shared: Vec<String>,
}

/// Reads `text` whole. `words` are the reading's lists, `slot_words` the slot extractor's.
#[must_use]
pub fn read(
    catalog: &Catalog,
    matcher: &Matcher,
    words: &ReadingWords,
    slot_words: &SlotWords,
    text: &str,
) -> Reading {
    // Request numbers are references: their digits are no value and no service.
    let mut text = normalize_width(text);
    if let Some(re) = REQUEST_NUMBER.as_ref() {
        text = re.replace_all(&text, " ").into_owned();
    }
    let text = numbers_corrected(&accounts_corrected(&text));
    let clauses = clauses(&text, words, matcher.joined_names());
    let pieces = pieces(&clauses);
    // The service each piece names plainly, ranked once per piece.
    let named: Vec<Option<ServiceId>> = pieces
        .iter()
        .map(|p| mention(catalog, matcher, &p.text, p.clause_start))
        .collect();
    let described = described_clauses(matcher, &clauses, &pieces, &named, words);
    // Whether a later piece of the same clause names a service: the words before it in the
    // clause are that request's ("，sy_med2 采购开单加批次有效期": sy_med2 is its account).
    let named_later: Vec<bool> = (0..pieces.len())
        .map(|j| {
            (j + 1..pieces.len())
                .take_while(|&k| pieces[k].clause == pieces[j].clause)
                .any(|k| named[k].is_some())
        })
        .collect();
    // "ab_shop 开A B cd_shop 开C": a message that opens with its customer names each customer
    // before that customer's services, so a customer standing between two services is the
    // next one's, not the one's before it.
    let customers_lead = pieces.first().is_some_and(|p| is_customer(&p.text))
        && named.first().is_some_and(Option::is_none);
    // "fz_sport，A，nb_tools，开B": the piece after a customer names its service, in the same
    // clause or opening the next.
    let names_next = |j: usize| {
        pieces.get(j + 1).is_some_and(|next| {
            named[j + 1].is_some()
                || (next.clause != pieces[j].clause
                    && described.get(next.clause).copied().flatten().is_some())
        })
    };
    let mut last_customer: Option<&str> = None;
    let mut pending: Vec<String> = Vec::new();
    let mut clause_named = false;
    let mut preamble: Vec<String> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut dropped: Vec<Dropped> = Vec::new();
    // "电子发票 哦不 物流追踪": a correction standing alone applies to the service named next.
    let mut correction_pending = false;
    let mut questions: Vec<(usize, String)> = Vec::new();
    let mut shared_clause: Option<usize> = None;
    // "A调到2500 另外 B调到150 哦不对 赠品那个写错了 应该是2000": a correction that names an
    // earlier request (by its service, or by words only its name holds) is that request's,
    // with the marker said just before it; the words after it go there too, until the next
    // service named.
    let mut marker_at: Option<(usize, usize)> = None;
    let mut target: Option<usize> = None;
    for (j, piece) in pieces.iter().enumerate() {
        let folded = fold(&piece.text);
        let first_of_clause = j == 0 || pieces[j - 1].clause != piece.clause;
        if first_of_clause {
            clause_named = false;
        }
        let marks_correction = slot_words
            .correction_markers
            .iter()
            .chain(&words.service_corrections)
            .any(|m| folded.contains(m.as_str()));
        // "ww_2开电子发票 哦不对ww那个也是物流追踪": a correction that names a customer by its
        // account and another service changes that customer's request to it.
        if marks_correction
            && let Some(id) = named[j]
            && let Some(k) = account_part(&folded, &groups)
            && groups[k].service != id
            && !groups
                .iter()
                .any(|g| g.service == id && group_customer(g) == group_customer(&groups[k]))
        {
            dropped.push(Dropped {
                service: groups[k].service,
                instead: Some(id),
            });
            groups[k].service = id;
            groups[k].pieces.push(piece.text.clone());
            target = Some(k);
            correction_pending = false;
            continue;
        }
        let named_back = match named[j] {
            _ if !marks_correction && marker_at.is_none() => None,
            Some(id) => groups.iter().position(|g| g.service == id),
            None => name_part(catalog, &folded, &groups)
                .or_else(|| ordinal_part(words, &folded, groups.len()))
                .or_else(|| account_part(&folded, &groups)),
        };
        let back = named_back.filter(|&k| k + 1 < groups.len() || target.is_some_and(|t| t != k));
        if let Some(k) = back {
            let mut moved = Vec::new();
            if let Some((g, from)) = marker_at.take()
                && g != k
                && let Some(group) = groups.get_mut(g)
                && from <= group.pieces.len()
            {
                moved = group.pieces.split_off(from);
            }
            moved.push(piece.text.clone());
            groups[k].pieces.extend(moved);
            target = Some(k);
            correction_pending = false;
            continue;
        }
        // The word lists are folded at load.
        let corrects = words
            .service_corrections
            .iter()
            .any(|m| folded.starts_with(m.as_str()));
        let withdraws = words
            .withdrawals
            .iter()
            .any(|m| folded.contains(m.as_str()));
        // Right after a correction the piece says what is meant: read it as a clause of its
        // own ("不是超期订单预警 是超期订单预警界面汇总看版", with its typo).
        let mention = named[j]
            .or_else(|| {
                correction_pending
                    .then(|| mention(catalog, matcher, &piece.text, true))
                    .flatten()
            })
            // After a request, a clause that is only a clear word match must ask for something
            // too ("，另外客户说包裹太多查不过来" explains; it is no #20 request).
            .filter(|&id| {
                groups.is_empty()
                    || correction_pending
                    || matcher.names_fully(id, &piece.text)
                    || asks(
                        words,
                        &own_words(&pieces, &named, j, &words.service_corrections),
                    )
            })
            .or_else(|| {
                // A clause that describes its service instead of naming it.
                first_of_clause
                    .then(|| described.get(piece.clause).copied().flatten())
                    .flatten()
                    .filter(|_| starts_request(&clauses[piece.clause], &groups))
            })
            .filter(|id| !dropped.iter().any(|d| d.service == *id));
        // Only the piece right after it: "调到50 哦不对 51 …" corrected the number instead.
        let follows_correction = correction_pending && mention.is_some();
        // "X … 不是X 是Y": the request named and disowned is replaced by the one named next.
        let disowns_last = mention.is_some()
            && groups.last().map(|g| g.service) == mention
            && words
                .negations
                .iter()
                .any(|n| folded.starts_with(n.as_str()));
        correction_pending = (corrects && mention.is_none()) || disowns_last;
        let corrects = corrects || follows_correction;
        if mention.is_some() {
            clause_named = true;
        }
        // "仓库编号 CK01" is a value after its label, no customer.
        let customer = (is_customer(&piece.text)
            && !(j > 0 && ends_with_label(&pieces[j - 1].text, catalog)))
        .then_some(piece.text.as_str());
        let next_customer = customers_lead
            && customer.is_some()
            && last_customer.is_some_and(|l| Some(l) != customer);
        if customer.is_some() {
            last_customer = customer;
        }
        if mention.is_none()
            && !withdraws
            && !corrects
            && !groups.is_empty()
            && (!clause_named || next_customer)
            && (named_later[j] || next_customer && names_next(j))
        {
            pending.push(piece.text.clone());
            continue;
        }
        match mention {
            Some(id) if withdraws => {
                // "电子发票先别开了": the service is taken back, wherever it was named.
                dropped.push(Dropped {
                    service: id,
                    instead: None,
                });
                groups.retain(|g| g.service != id);
            }
            Some(id) if corrects && !groups.is_empty() => {
                // "电子发票 哦不 物流追踪": the last request becomes the corrected one; what was
                // said for it stays (an account, a number), the service changes.
                if let Some(last) = groups.last_mut()
                    && last.service != id
                {
                    dropped.push(Dropped {
                        service: last.service,
                        instead: Some(id),
                    });
                    last.service = id;
                }
                if let Some(last) = groups.last_mut() {
                    last.pieces.push(piece.text.clone());
                }
            }
            Some(id) => {
                // The same service named again ("订单合并上限 … 合并上限 150") adds to it.
                target = None;
                marker_at = None;
                let mut own = std::mem::take(&mut pending);
                own.push(piece.text.clone());
                if let Some(g) = groups.iter_mut().rev().find(|g| g.service == id) {
                    g.pieces.extend(own);
                } else {
                    groups.push(Group {
                        service: id,
                        pieces: own,
                        joined: clauses[piece.clause].joined,
                        shared: Vec::new(),
                    });
                }
            }
            // "电子发票 先别开了": a withdrawal standing alone takes back the service before it
            // ("店不开了" says why a shop is unbound: it has a subject of its own).
            None if withdraws && !groups.is_empty() && withdraws_alone(words, &folded) => {
                if let Some(last) = groups.pop() {
                    dropped.push(Dropped {
                        service: last.service,
                        instead: None,
                    });
                }
            }
            // "这个多久能好?": a question that names no service is answered, never a value.
            // "fz_shoes 开店铺利润报表 多久能好 客户要看利润": a piece asking when is a question
            // wherever it stands.
            // A value or a correction before the asking words ("jd和ks 不是dy 今天能好吗") is
            // no part of the question.
            None if (clauses[piece.clause].question
                && !named_later[j]
                && !clause_named
                && (!holds_value(&piece.text, marks_correction)
                    || asks_itself(words, &piece.text)))
                || (!groups.is_empty()
                    && words
                        .when_questions
                        .iter()
                        .any(|w| piece.text.contains(w.as_str())))
                // "开电子发票 账号 X 客户要开票 能试用吗": a piece that asks on its own, after
                // the request, is a question even in the clause that named the service.
                || (!groups.is_empty()
                    && !named_later[j]
                    && !holds_value(&piece.text, marks_correction)
                    && asks_itself(words, &piece.text)) =>
            {
                match questions.last_mut() {
                    Some((c, q)) if *c == piece.clause => {
                        q.push(' ');
                        q.push_str(&piece.text);
                    }
                    _ => questions.push((piece.clause, piece.text.clone())),
                }
            }
            None => {
                // "原因都是客户要求 订单量上来了": the rest of a shared clause is shared too.
                let is_shared = words
                    .shared_markers
                    .iter()
                    .any(|m| folded.contains(m.as_str()))
                    || shared_clause == Some(piece.clause);
                if is_shared {
                    shared_clause = Some(piece.clause);
                }
                if is_shared && !groups.is_empty() {
                    // "A和B 原因都是… 另外C …": the reason is A's and B's, not C's.
                    for g in &mut groups {
                        g.shared.push(piece.text.clone());
                    }
                } else if let Some(k) = target.or(groups.len().checked_sub(1)) {
                    if marks_correction && marker_at.is_none() {
                        marker_at = Some((k, groups[k].pieces.len()));
                    }
                    groups[k].pieces.push(piece.text.clone());
                } else {
                    preamble.push(piece.text.clone());
                }
            }
        }
    }
    // Words held for a request that was then corrected away or taken back go with it.
    pending.clear();
    // "cz_lamp 滞销分析要查60天的 nt_textile开子母单…": words for another customer before the
    // first service named are a request of their own, read from what they describe; never
    // given to the next customer's request.
    let mut unread: Vec<String> = Vec::new();
    let preamble_account = preamble.iter().find_map(|p| leading_customer(p));
    let first_account = groups
        .first()
        .and_then(|g| g.pieces.first())
        .and_then(|p| leading_customer(p));
    // Only an account ("lyf_store跟gz_tea01都要…") lists customers of the same request.
    let only_accounts = preamble.iter().all(|p| is_customer(p));
    // "nb_outdoor要开批量拆单 还有订单合并上限…": a customer's words that ask for something and
    // end before a connective are a request of their own, even when the next names no customer.
    let asked_apart = groups.first().is_some_and(|g| g.joined)
        && preamble_account.is_some()
        && asks(words, &preamble.join(" "));
    let other_customer = matches!((preamble_account, first_account), (Some(a), Some(b)) if a != b);
    if (other_customer || asked_apart) && !only_accounts {
        let said = preamble.join(" ");
        let ranked = matcher.rank(&said);
        match matcher.verdict(&ranked) {
            Verdict::Service(id)
                if asks(words, &said)
                    && ranked
                        .first()
                        .is_some_and(|s| s.score >= words.described_min_score)
                    && !groups.iter().any(|g| g.service == id) =>
            {
                groups.insert(
                    0,
                    Group {
                        service: id,
                        pieces: std::mem::take(&mut preamble),
                        joined: false,
                        shared: Vec::new(),
                    },
                );
            }
            _ => unread.push(said),
        }
        preamble.clear();
    }
    let groups = split_by_account(catalog, slot_words, groups);
    let mut plan: Vec<Planned> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let mut parts: Vec<&str> = Vec::new();
        if i == 0 {
            parts.extend(preamble.iter().map(String::as_str));
        }
        parts.extend(g.pieces.iter().map(String::as_str));
        parts.extend(g.shared.iter().map(String::as_str));
        let text = parts.join(" ");
        let account = catalog.service(g.service).and_then(|s| {
            let found = extract(catalog, s, slot_words, &text);
            s.seller_account_field()
                .and_then(|f| found.answers.get(f.key()))
                .map(|v| v.display(false))
        });
        plan.push(Planned {
            service: g.service,
            text,
            account,
        });
    }
    // A request that names no account is for the message's one customer ("A调到2000 B调到100
    // 账号 X": X is both requests'), else for the customer of the request before it.
    let mut accounts: Vec<&str> = plan.iter().filter_map(|p| p.account.as_deref()).collect();
    accounts.dedup();
    let only = match accounts.as_slice() {
        [one] => Some((*one).to_owned()),
        _ => None,
    };
    for i in 0..plan.len() {
        // "还有15990123876要开…": a customer of its own that is no plain account (asked about
        // when its form starts) never takes another request's account.
        let own_customer = plan[i]
            .text
            .split_whitespace()
            .any(|p| leading_customer(p).is_some());
        // "森屿家居 开电子发票 … 另外qiyue_kids要开物流追踪": an account that opens a later
        // request's own words is that request's customer, never an earlier one's.
        let opens_later = || {
            only.as_deref().is_some_and(|one| {
                plan[i + 1..].iter().any(|p| {
                    p.account.as_deref() == Some(one)
                        && p.text
                            .split_whitespace()
                            .next()
                            .and_then(leading_customer)
                            .is_some_and(|a| a.eq_ignore_ascii_case(one))
                })
            })
        };
        if plan[i].account.is_none() && !own_customer {
            plan[i].account = match (&only, i) {
                (Some(_), _) if opens_later() => None,
                (Some(one), _) => Some(one.clone()),
                (None, 0) => None,
                (None, _) => plan[i - 1].account.clone(),
            };
        }
    }
    Reading {
        plan,
        dropped,
        unread,
        questions: questions.into_iter().map(|(_, q)| q).collect(),
    }
}

/// The service a piece names plainly, if any. A piece cut at a space must name one of the
/// service's names or aliases in full; a whole clause may also be a clear lexical winner.
fn mention(catalog: &Catalog, matcher: &Matcher, piece: &str, clause: bool) -> Option<ServiceId> {
    let ranked = matcher.rank_words(piece);
    let full = |id: ServiceId| matcher.names_fully(id, piece);
    let folded = fold(piece);
    let chosen = match matcher.verdict(&ranked) {
        Verdict::Service(id) if full(id) => id,
        Verdict::Service(id) if clause && matcher.lexically_clear(&ranked) => return Some(id),
        Verdict::Ambiguous(ids) => {
            let named = ids.iter().copied().find(|&id| full(id))?;
            // "开个韵达的物流追踪": 物流追踪 is named in full, but the first candidate's name
            // holds it and says more (韵达物流追踪): the specific one is meant.
            let more_specific = ids.iter().copied().find(|&other| {
                let (Some(o), Some(n)) = (catalog.service(other), catalog.service(named)) else {
                    return false;
                };
                let (o_name, n_name) = (fold(&o.name), fold(&n.name));
                let extra = o_name.replacen(n_name.as_str(), "", 1);
                other != named
                    && o_name.contains(n_name.as_str())
                    && !extra.is_empty()
                    && folded.contains(extra.as_str())
            });
            more_specific.unwrap_or(named)
        }
        _ => return None,
    };
    // "采购开单加批次有效期": 批次有效期 is #15's name in full, but #65's name holds nearly
    // every word said (采购开单 … 批次 … 有效期): the one that covers more is meant.
    let chars: Vec<char> = folded.chars().filter(|c| is_han(*c)).collect();
    let covers = |id: ServiceId| -> usize {
        let names = folded_names(catalog, id);
        chars
            .windows(2)
            .filter(|w| {
                let pair: String = w.iter().collect();
                names.iter().any(|n| n.contains(pair.as_str()))
            })
            .count()
    };
    let own = covers(chosen);
    let wider = ranked
        .iter()
        .take(4)
        .map(|s| s.id)
        .filter(|&other| other != chosen)
        .map(|other| (covers(other), other))
        .max()
        .filter(|(c, _)| *c >= own + 2)
        .map(|(_, other)| other);
    Some(wider.unwrap_or(chosen))
}

/// For each clause in which no piece names a service: the service the whole clause clearly
/// describes ("另外mxw2024报表日期要能查超过32天" is #84 without naming it).
fn described_clauses(
    matcher: &Matcher,
    clauses: &[Clause],
    pieces: &[Piece],
    named: &[Option<ServiceId>],
    words: &ReadingWords,
) -> Vec<Option<ServiceId>> {
    let min_score = words.described_min_score;
    clauses
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let names_one = pieces
                .iter()
                .zip(named)
                .any(|(p, n)| p.clause == i && n.is_some());
            if names_one || clauses.len() < 2 {
                return None;
            }
            // It must ask for something, not only explain ("然后客户大促单量大").
            if !asks(words, &c.text) {
                return None;
            }
            // Digits stay: "超过32天" is part of #84's name.
            let ranked = matcher.rank(&c.text);
            match matcher.verdict(&ranked) {
                Verdict::Service(id) if ranked.first().is_some_and(|b| b.score >= min_score) => {
                    Some(id)
                }
                _ => None,
            }
        })
        .collect()
}

/// The words of piece `j`'s clause that are its own: the piece, the words after it up to the
/// next service named or correction, and the plain words right before it ("另外 开 …"), never a piece before
/// it that holds a value or named a service. "帮A开个物流追踪 客户老问包裹到哪了" and "A调到40
/// 大件家具一单好几个包裹": the 开 and 调 asked for the service before; the words after it only
/// explain, so 包裹 starts no request.
fn own_words(
    pieces: &[Piece],
    named: &[Option<ServiceId>],
    j: usize,
    corrections: &[String],
) -> String {
    let clause = pieces[j].clause;
    let from = (0..j)
        .rev()
        .take_while(|&k| {
            pieces[k].clause == clause
                && named[k].is_none()
                && !pieces[k].text.chars().any(|c| c.is_ascii_alphanumeric())
        })
        .last()
        .unwrap_or(j);
    let to = (j + 1..pieces.len())
        // "… 不对 调到45" corrects what was said before; its 调 asks for nothing new.
        .find(|&k| {
            pieces[k].clause != clause || named[k].is_some() || {
                let folded = fold(&pieces[k].text);
                corrections.iter().any(|m| folded.starts_with(m.as_str()))
            }
        })
        .unwrap_or(pieces.len());
    pieces[from..to]
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `text` asks for something (holds a request word: 开/调/上限/重置 …), not only
/// explains.
fn asks(words: &ReadingWords, text: &str) -> bool {
    words
        .request_markers
        .iter()
        .any(|m| text.contains(m.as_str()))
}

/// Whether a clause that describes a service starts a request of its own rather than adding
/// words to the request before it: it opens the message (before any service is named), it
/// follows a connective ("另外 …", "顺便 …"), or it names a customer the requests before it
/// did not ("… mxw2024报表日期 …"). A clause after a comma that only explains ("，客户大促单
/// 多") stays with its request.
fn starts_request(clause: &Clause, groups: &[Group]) -> bool {
    if groups.is_empty() || clause.joined {
        return true;
    }
    clause.text.split_whitespace().any(|part| {
        leading_customer(part).is_some_and(|account| {
            !groups
                .iter()
                .any(|g| g.pieces.iter().any(|p| p.contains(account)))
        })
    })
}

/// Cuts the clauses at spaces (pieces).
fn pieces(clauses: &[Clause]) -> Vec<Piece> {
    let mut out = Vec::new();
    // "1 wdt_01开A 2 …": a list's own numbering (1, 2, 3 in turn, each followed by more) is no
    // value; "调到1 哦不对 2" ends with its number, and "100 … 2" is out of turn.
    let mut next_item = 1u32;
    for (i, clause) in clauses.iter().enumerate() {
        let mut first = true;
        let parts: Vec<&str> = clause.text.split_whitespace().collect();
        for (k, part) in parts.iter().enumerate() {
            let number = part.trim_end_matches(['.', '、', ')', '）', ':', '：']);
            let circled = "①②③④⑤⑥⑦⑧⑨".chars().position(|c| number == c.to_string());
            let item = number
                .parse::<u32>()
                .ok()
                .or(circled.and_then(|p| u32::try_from(p + 1).ok()));
            let more = k + 1 < parts.len();
            if item == Some(next_item) && more {
                next_item += 1;
                continue;
            }
            let part = *part;
            out.push(Piece {
                text: part.to_owned(),
                clause_start: first || i == 0,
                clause: i,
            });
            first = false;
        }
    }
    out
}

static PUNCTUATION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[,，;；。!！?？\n+＋|｜]|\.\.\.|…+|、").ok());

/// The clauses of a text: cut at punctuation and at connectives (not inside a word).
fn clauses(text: &str, words: &ReadingWords, names: &[String]) -> Vec<Clause> {
    let Some(re) = PUNCTUATION.as_ref() else {
        return vec![Clause {
            text: text.to_owned(),
            joined: false,
            question: false,
        }];
    };
    let mut out = Vec::new();
    // Each chunk with the mark that ends it: "这个多久能好?" is a question.
    let mut chunks: Vec<(&str, bool)> = Vec::new();
    let mut from = 0;
    for m in re.find_iter(text) {
        chunks.push((&text[from..m.start()], matches!(m.as_str(), "?" | "？")));
        from = m.end();
    }
    chunks.push((&text[from..], false));
    for (chunk, asked) in chunks {
        let first = out.len();
        let mut rest = chunk.trim_start();
        let mut joined = false;
        'scan: loop {
            // A connective opening a clause ("，还有电子发票") only joins it to the one before.
            if let Some(c) = words
                .connectives
                .iter()
                .find(|c| rest.starts_with(c.as_str()) && !in_word(rest, 0, words, names))
            {
                rest = rest[c.len()..].trim_start();
                joined = true;
                continue 'scan;
            }
            // The earliest connective not inside a word.
            let mut best: Option<(usize, usize)> = None;
            for c in &words.connectives {
                let mut from = 0;
                while let Some(at) = rest[from..].find(c.as_str()) {
                    let at = from + at;
                    // "bb_02再开个…": an account alone before the connective is the next
                    // request's customer, not a clause of its own.
                    let lone_account = leading_customer(rest[..at].trim())
                        .is_some_and(|a| a.len() == rest[..at].trim().len());
                    if at > 0 && !in_word(rest, at, words, names) && !lone_account {
                        if best.is_none_or(|(b, _)| at < b) {
                            best = Some((at, c.len()));
                        }
                        break;
                    }
                    from = at + c.len();
                }
            }
            match best {
                Some((at, len)) => {
                    out.push(Clause {
                        text: rest[..at].to_owned(),
                        joined,
                        question: false,
                    });
                    rest = &rest[at + len..];
                    joined = true;
                }
                None => {
                    out.push(Clause {
                        text: rest.to_owned(),
                        joined,
                        question: false,
                    });
                    break 'scan;
                }
            }
        }
        // "A放到400 B也调到80": a clause setting two numbers for two things is two clauses.
        let mut k = first;
        while k < out.len() {
            if let Some(at) = second_amount_cut(&out[k].text, words) {
                let rest = out[k].text[at..].trim_start().to_owned();
                out[k].text.truncate(at);
                out.insert(
                    k + 1,
                    Clause {
                        text: rest,
                        joined: true,
                        question: false,
                    },
                );
            }
            k += 1;
        }
        // The question mark ends the last clause of its chunk; particles and "when" words
        // make any clause a question.
        let count = out.len();
        for (k, c) in out.iter_mut().enumerate().skip(first) {
            let t = c.text.trim_end();
            c.question = (asked && k + 1 == count)
                || words
                    .question_endings
                    .iter()
                    .any(|e| t.ends_with(e.as_str()))
                || words.when_questions.iter().any(|w| t.contains(w.as_str()));
        }
    }
    out.retain(|c| !c.text.trim().is_empty());
    out
}

static AMOUNT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千万]+)[万千百wWkK]?(?:\d+)?").ok()
});

/// Where a clause that sets two numbers for two things is cut ("辅助单位数量放到400 货品能指定
/// 的仓库数也调到80" → after "400"): a number after an amount cue, then words of their own
/// (two Chinese characters or more, no correction among them), then another cue and number.
fn second_amount_cut(text: &str, words: &ReadingWords) -> Option<usize> {
    let re = AMOUNT.as_ref()?;
    // Every "cue + number": where the cue starts and where the number ends.
    let mut set: Vec<(usize, usize)> = Vec::new();
    for cue in &words.amount_split_cues {
        for (at, _) in text.match_indices(cue.as_str()) {
            let after = at + cue.len();
            if let Some(m) = re.find(&text[after..]) {
                set.push((at, after + m.end()));
            }
        }
    }
    set.sort_unstable();
    set.dedup_by_key(|(at, _)| *at);
    set.windows(2).find_map(|pair| {
        let [(_, end), (next, _)] = pair else {
            return None;
        };
        if next <= end {
            return None;
        }
        let between = &text[*end..*next];
        let han = between.chars().filter(|c| is_han(*c)).count();
        let corrects = words
            .service_corrections
            .iter()
            .any(|m| between.contains(m.as_str()));
        if han < 2 || corrects {
            return None;
        }
        // "A加到350 开了太多分销店 第二个 bb_02 B调到300": the words up to the next customer are
        // still the first request's (its reason); the cut is before that customer (and the
        // ordinal word naming it).
        Some(next_customer_at(between, words).map_or(*end, |at| end + at))
    })
}

/// Where, in `between` (after a request's number), a customer of the next request begins: an
/// account-shaped token after some words, with an ordinal word ("第二个") right before it.
fn next_customer_at(between: &str, words: &ReadingWords) -> Option<usize> {
    let at = between.char_indices().find_map(|(i, c)| {
        let after_boundary = between[..i]
            .chars()
            .next_back()
            .is_some_and(|p| !(p.is_ascii_alphanumeric() || matches!(p, '_' | '-' | '.' | '@')));
        (c.is_ascii_alphabetic() && after_boundary && leading_account(&between[i..]).is_some())
            .then_some(i)
    })?;
    let before = between[..at].trim_end();
    let start = words
        .ordinal_references
        .keys()
        .filter(|w| before.ends_with(w.as_str()))
        .map(|w| before.len() - w.len())
        .min()
        .unwrap_or(at);
    let own_words = between[..start].chars().filter(|c| is_han(*c)).count();
    (own_words >= 2).then_some(start)
}

/// Whether the connective at byte `at` of `s` is part of a word that joins nothing: an
/// exception ("物流跟踪", "暖和") or a service name ("回传备注和标旗上限调整") covering it.
fn in_word(s: &str, at: usize, words: &ReadingWords, names: &[String]) -> bool {
    let covers = |w: &String| {
        s.match_indices(w.as_str())
            .any(|(p, _)| p <= at && at < p + w.len())
    };
    words.connective_exceptions.iter().any(covers) || names.iter().any(covers)
}

/// Whether a piece says a value (letters or digits) or corrects one.
fn holds_value(piece: &str, corrects: bool) -> bool {
    corrects || piece.chars().any(|c| c.is_ascii_alphanumeric())
}

/// Whether a piece itself asks: when, why, or a question ending.
fn asks_itself(words: &ReadingWords, piece: &str) -> bool {
    words
        .when_questions
        .iter()
        .chain(&words.why_words)
        .any(|w| piece.contains(w.as_str()))
        || words
            .question_endings
            .iter()
            .any(|e| piece.trim_end_matches(['?', '？']).ends_with(e.as_str()))
        || piece.ends_with(['?', '？'])
}

/// A service's name and aliases, folded.
fn folded_names(catalog: &Catalog, id: ServiceId) -> Vec<String> {
    catalog.service(id).map_or_else(Vec::new, |s| {
        std::iter::once(&s.name)
            .chain(&s.aliases)
            .map(|n| fold(n))
            .collect()
    })
}

/// The earlier request a correction names by words only its service's name holds ("赠品那个
/// 写错了" after 赠品策略上限 and 订单合并上限): two Chinese characters in a row that occur in
/// the names of exactly one request's service. `None` when they name none, or several.
fn name_part(catalog: &Catalog, folded: &str, groups: &[Group]) -> Option<usize> {
    let services: Vec<ServiceId> = groups.iter().map(|g| g.service).collect();
    named_by_part(catalog, folded, &services)
}

/// The earlier request a correction names by its customer ("aa那个是2500" after aa_01 … and
/// bb_02 …): a token of letters and digits in the words, followed by 那个/的, that opens the
/// account of exactly one request. `None` when it opens none, or several.
fn account_part(folded: &str, groups: &[Group]) -> Option<usize> {
    static TOKEN: LazyLock<Option<Regex>> =
        LazyLock::new(|| Regex::new(r"([a-z0-9_.\-]{2,20})\s*的?(?:那个|那单|那家|的)").ok());
    let token = TOKEN
        .as_ref()?
        .captures(folded)?
        .get(1)?
        .as_str()
        .to_owned();
    let mut holders = groups.iter().enumerate().filter(|(_, g)| {
        group_customer(g).is_some_and(|a| a.to_lowercase().starts_with(token.as_str()))
    });
    match (holders.next(), holders.next()) {
        (Some((k, _)), None) => Some(k),
        _ => None,
    }
}

/// The customer a request's words name first.
fn group_customer(g: &Group) -> Option<&str> {
    g.pieces.iter().find_map(|p| leading_customer(p))
}

/// Which of `services` the words `folded` name by a part of its name only ("透视的先不提了"
/// among 数据透视明细账上限调整 and 报表查询日期延长): two Chinese characters in a row that
/// occur in the names of exactly one of them. `None` when they name none, or several.
#[must_use]
pub fn named_by_part(catalog: &Catalog, folded: &str, services: &[ServiceId]) -> Option<usize> {
    let names: Vec<Vec<String>> = services
        .iter()
        .map(|&id| folded_names(catalog, id))
        .collect();
    let chars: Vec<char> = folded.chars().collect();
    let mut found: Option<usize> = None;
    for pair in chars.windows(2) {
        if !pair.iter().all(|c| is_han(*c)) {
            continue;
        }
        let pair: String = pair.iter().collect();
        let holders: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, ns)| ns.iter().any(|n| n.contains(pair.as_str())))
            .map(|(k, _)| k)
            .collect();
        match (holders.as_slice(), found) {
            ([k], None) => found = Some(*k),
            ([k], Some(f)) if *k == f => {}
            ([_], Some(_)) => return None,
            _ => {}
        }
    }
    found
}

static ACCOUNT_CORRECTION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?:不是\s*([A-Za-z0-9_.@-]{3,})\s*(?:而|应该)?是|([A-Za-z0-9_.@-]{3,})\s*(?:写错了|打错了|搞错了|错了)\s*(?:应该是|是)?)\s*([A-Za-z0-9_.@-]{3,})",
    )
    .ok()
});

/// Whether `folded` is a withdrawal and nothing else: only lead words (data, `[reading]
/// withdrawal_leads`: "客户说", "先", "那") before the withdrawal word, only particles after it.
/// "客户说先不开了" is one; "店不开了" (the shop closes: a reason) is not.
#[must_use]
pub fn withdraws_alone(words: &ReadingWords, folded: &str) -> bool {
    words.withdrawals.iter().any(|w| {
        folded.match_indices(w.as_str()).any(|(at, _)| {
            let mut lead = &folded[..at];
            while let Some(rest) = words
                .withdrawal_leads
                .iter()
                .filter(|l| !l.is_empty())
                .find_map(|l| lead.strip_prefix(l.as_str()))
            {
                lead = rest;
            }
            let after = &folded[at + w.len()..];
            // "客户说不够就先不弄了": after 就 the withdrawal is the consequence, whatever led
            // to it.
            let consequence = words
                .withdrawal_consequences
                .iter()
                .any(|c| !c.is_empty() && folded[..at].ends_with(c.as_str()));
            (lead.is_empty() || consequence)
                && after.chars().all(|c| TRAILING_PARTICLES.contains(c))
        })
    })
}

/// The request a correction points at by its place ("第一个店写错了"), among `count`.
fn ordinal_part(words: &ReadingWords, folded: &str, count: usize) -> Option<usize> {
    let (_, &place) = words
        .ordinal_references
        .iter()
        .filter(|(w, _)| folded.contains(w.as_str()))
        .max_by_key(|(w, _)| w.chars().count())?;
    match place {
        0 => count.checked_sub(1),
        n => (n <= count).then(|| n - 1),
    }
}

/// "给 sz_ld_2 原因要对快递费用 不是 sz_ld_2 是 sz_ld02": an account corrected with the old one
/// written out is replaced wherever it was said, and the correction itself is no value. Only
/// when the old account was said before the correction and both are account-shaped.
fn accounts_corrected(text: &str) -> String {
    let Some(re) = ACCOUNT_CORRECTION.as_ref() else {
        return text.to_owned();
    };
    let mut out = text.to_owned();
    while let Some(c) = re.captures(&out) {
        let (Some(whole), Some(now)) = (c.get(0), c.get(3)) else {
            break;
        };
        let Some(was) = c.get(1).or_else(|| c.get(2)) else {
            break;
        };
        let (was, now) = (was.as_str().to_owned(), now.as_str().to_owned());
        let before = &out[..whole.start()];
        if was == now
            || !is_seller_account(&was)
            || !is_seller_account(&now)
            || !was.chars().any(|c| c.is_ascii_alphabetic())
            || !before.contains(was.as_str())
        {
            break;
        }
        let rest = out[whole.end()..].to_owned();
        out = format!(
            "{} {}",
            before.replace(was.as_str(), &now).trim_end(),
            rest.trim_start()
        );
    }
    out
}

static NUMBER_CORRECTION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"不是\s*(\d+)\s*(?:而|应该)?是\s*(\d+)(?:[^\d.]|$)").ok());

/// "wh_lele调到120 cq_food调到200 … 不是120是150": a number corrected with the old one written
/// out replaces it where it was said, when it was said exactly once before (as a number of its
/// own, not inside a longer one or an account); the correction itself is then no value.
fn numbers_corrected(text: &str) -> String {
    let Some(re) = NUMBER_CORRECTION.as_ref() else {
        return text.to_owned();
    };
    let Some(c) = re.captures(text) else {
        return text.to_owned();
    };
    let (Some(whole), Some(was), Some(now)) = (c.get(0), c.get(1), c.get(2)) else {
        return text.to_owned();
    };
    let before = &text[..whole.start()];
    let standalone: Vec<usize> = before
        .match_indices(was.as_str())
        .map(|(at, _)| at)
        .filter(|&at| {
            let prev = before[..at].chars().next_back();
            let next = before[at + was.len()..].chars().next();
            !prev.is_some_and(|p| p.is_ascii_alphanumeric() || matches!(p, '_' | '.' | '-'))
                && !next.is_some_and(|n| n.is_ascii_alphanumeric() || matches!(n, '_' | '.'))
        })
        .collect();
    let [at] = standalone.as_slice() else {
        return text.to_owned();
    };
    let rest = &text[now.end()..];
    format!(
        "{}{}{} {}",
        &before[..*at],
        now.as_str(),
        before[at + was.len()..].trim_end(),
        rest.trim_start()
    )
}

/// "订单合并上限 yw_socks要150 lyf_store要200": one service, two customers each with their own
/// value: one request per customer, each with the service's words and its own piece.
fn split_by_account(catalog: &Catalog, slot_words: &SlotWords, groups: Vec<Group>) -> Vec<Group> {
    let mut out = Vec::new();
    for g in groups {
        // The labels of the service's free-text fields ("原因", "理由").
        let prose_labels: Vec<&String> = catalog
            .service(g.service)
            .into_iter()
            .flat_map(|s| &s.fields)
            .filter(|f| f.spec.prose)
            .flat_map(|f| std::iter::once(&f.spec.label).chain(&f.spec.cues))
            .filter(|l| !l.is_empty())
            .collect();
        let starts: Vec<usize> = g
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| leading_account(p).is_some())
            .map(|(i, _)| i)
            .collect();
        let own_values = starts
            .iter()
            .filter(|&&i| {
                let p = &g.pieces[i];
                let account = leading_account(p).unwrap_or_default();
                let rest = &p[account.len()..];
                // "duoduo_bj要组合装销量报表": words of its own after the account, not only
                // request talk ("也要").
                let own_words =
                    super::slots::without_fillers(rest, &slot_words.explanation_fillers)
                        .chars()
                        .filter(|c| is_han(*c))
                        .count();
                rest.chars().any(|c| c.is_ascii_digit()) || own_words >= 3
            })
            .count();
        if starts.len() < 2 || own_values < 2 || starts[0] == 0 {
            out.push(g);
            continue;
        }
        let head: Vec<String> = g.pieces[..starts[0]].to_vec();
        // "… duoduo_sz要多次购买查询 原因是客户运营要分析…": a reason said after the last
        // customer, labelled, is every customer's.
        let last = starts.last().copied().unwrap_or_default();
        let shared_from = (last + 1..g.pieces.len())
            .find(|&i| {
                prose_labels
                    .iter()
                    .any(|l| g.pieces[i].starts_with(l.as_str()))
            })
            .unwrap_or(g.pieces.len());
        let mut shared = g.shared.clone();
        shared.extend(g.pieces[shared_from..].iter().cloned());
        for (k, &at) in starts.iter().enumerate() {
            let end = starts
                .get(k + 1)
                .copied()
                .unwrap_or(shared_from)
                .min(shared_from.max(at + 1));
            let mut pieces = head.clone();
            pieces.extend(g.pieces[at..end].iter().cloned());
            out.push(Group {
                service: g.service,
                pieces,
                joined: g.joined,
                shared: shared.clone(),
            });
        }
    }
    out
}

/// Whether `piece` ends with a field's label or cue ("仓库编号", "账号是"). Asked only of
/// the rare piece that is a customer-shaped token, so the labels are not folded per message.
fn ends_with_label(piece: &str, catalog: &Catalog) -> bool {
    let folded = fold(piece);
    let folded = folded.trim_end_matches(['是', '为', ':', '：']);
    catalog
        .fields()
        .flat_map(|f| std::iter::once(&f.label).chain(&f.cues))
        .map(|w| fold(w))
        .any(|l| !l.is_empty() && folded.ends_with(l.as_str()))
}

/// A piece that is a customer and nothing else ("ab_shop", "13605718899").
fn is_customer(piece: &str) -> bool {
    leading_customer(piece) == Some(piece)
}

/// A customer opening a piece: an account-shaped token or a mainland mobile number (a
/// common login: "15990123876要开…"), which the form asks about rather than takes.
fn leading_customer(piece: &str) -> Option<&str> {
    leading_account(piece).or_else(|| {
        let end = piece
            .char_indices()
            .find(|(_, c)| !c.is_ascii_digit())
            .map_or(piece.len(), |(i, _)| i);
        let digits = &piece[..end];
        let mobile = digits.len() == 11
            && digits.starts_with('1')
            && digits
                .as_bytes()
                .get(1)
                .is_some_and(|d| (b'3'..=b'9').contains(d));
        mobile.then_some(digits)
    })
}

/// An account-shaped token opening a piece ("yw_socks要150" → "yw_socks").
fn leading_account(piece: &str) -> Option<&str> {
    let end = piece
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')))
        .map_or(piece.len(), |(i, _)| i);
    let token = &piece[..end];
    (token.len() >= 3 && token.chars().any(|c| c.is_ascii_alphabetic()) && is_seller_account(token))
        .then_some(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn words() -> ReadingWords {
        ReadingWords {
            connectives: ["还有", "另外", "然后", "和", "跟"]
                .map(String::from)
                .to_vec(),
            connective_exceptions: ["跟踪", "跟进"].map(String::from).to_vec(),
            question_endings: ["吗"].map(String::from).to_vec(),
            when_questions: ["多久"].map(String::from).to_vec(),
            ..ReadingWords::default()
        }
    }

    #[test]
    fn clauses_cut_at_punctuation_and_connectives_but_not_inside_words() {
        let cut = clauses("物流跟踪开一下，还有电子发票和多包裹", &words(), &[]);
        let texts: Vec<&str> = cut.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["物流跟踪开一下", "电子发票", "多包裹"]);
        let joined: Vec<bool> = cut.iter().map(|c| c.joined).collect();
        assert_eq!(joined, [false, true, true]);
    }

    #[test]
    fn a_name_holding_a_connective_is_not_cut() {
        let names = ["回传备注和标旗上限调整".to_owned()];
        let cut = clauses("回传备注和标旗上限调整调到150和电子发票", &words(), &names);
        let texts: Vec<&str> = cut.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["回传备注和标旗上限调整调到150", "电子发票"]);
    }

    #[test]
    fn a_clause_setting_two_numbers_for_two_things_is_cut_after_the_first() {
        let words = ReadingWords {
            amount_split_cues: ["调到", "放到"].map(String::from).to_vec(),
            service_corrections: ["不对"].map(String::from).to_vec(),
            ..words()
        };
        let texts = |t: &str| -> Vec<String> {
            clauses(t, &words, &[])
                .into_iter()
                .map(|c| c.text)
                .collect()
        };
        assert_eq!(
            texts("lyf_store 辅助单位数量要放到400 货品能指定的仓库数也调到80"),
            [
                "lyf_store 辅助单位数量要放到400",
                "货品能指定的仓库数也调到80"
            ]
        );
        // A correction between the two, or nothing said in between, keeps one clause.
        assert_eq!(
            texts("上限调到3000 不对 调到2500"),
            ["上限调到3000 不对 调到2500"]
        );
        assert_eq!(texts("调到3千 调到2500吧"), ["调到3千 调到2500吧"]);
        assert_eq!(texts("上限调到一万 也放到2万"), ["上限调到一万 也放到2万"]);
    }

    #[test]
    fn questions_are_set_apart_from_the_answer() {
        let (rest, questions) = questions_apart("客户要对物流费用 这个 多久能好啊", &words());
        assert_eq!(
            (rest.as_str(), questions),
            ("客户要对物流费用", vec!["这个 多久能好啊".to_owned()])
        );
        let (rest, questions) = questions_apart("客户要对物流费用，这个多久能好啊", &words());
        assert_eq!(
            (rest.as_str(), questions),
            ("客户要对物流费用", vec!["这个多久能好啊".to_owned()])
        );
        let (rest, questions) = questions_apart("你是机器人吗", &words());
        assert_eq!(
            (rest.as_str(), questions),
            ("", vec!["你是机器人吗".to_owned()])
        );
        let (rest, questions) = questions_apart("大促订单太多", &words());
        assert_eq!((rest.as_str(), questions.len()), ("大促订单太多", 0));
    }

    #[test]
    fn a_number_corrected_with_the_old_one_written_out_replaces_it_where_it_was_said() {
        assert_eq!(
            numbers_corrected("a_1调到120 b_2调到200 原因多 不是120是150 要多久"),
            "a_1调到150 b_2调到200 原因多 要多久"
        );
        // Said twice before, or only inside a longer number: which one is meant is unclear.
        let twice = "a_1调到120 b_2也120 不是120是150";
        assert_eq!(numbers_corrected(twice), twice);
        let inside = "调到1200 不是120是150";
        assert_eq!(numbers_corrected(inside), inside);
    }

    #[test]
    fn request_numbers_are_read_anywhere_in_any_case() {
        let refs = references("查一下 kt-20261206-2 还有 KT202612070003 到哪了");
        let ids: Vec<&str> = refs.iter().map(RequestId::as_str).collect();
        assert_eq!(ids, ["KT-20261206-0002", "KT-20261207-0003"]);
    }

    #[test]
    fn a_leading_account_is_an_account_shaped_token() {
        assert_eq!(leading_account("yw_socks要150"), Some("yw_socks"));
        assert_eq!(leading_account("150单"), None);
        assert_eq!(leading_account("ok"), None);
    }
}
