//! 10,000 completion notices through the outbox to the WeCom API simulator: elapsed time and
//! duplicates. `cargo bench --bench notices` (prints a JSON line; no criterion statistics, the
//! figure is one end-to-end run).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use kaitong::catalog::{Answers, FilingRoute, Team, Window};
use kaitong::domain::{ChannelKind, Conversation, ServiceId, UserId};
use kaitong::requests::{FiledForm, Requester};
use kaitong_dev::simulator::{SimulatedApp, WecomSimulator};

const NOTICES: usize = 10_000;

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = kaitong::config::Settings::load_with_env(None, Vec::new()).unwrap();
        settings.dialogs.dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs");
        let sim = WecomSimulator::new()
            .with_app(SimulatedApp::new(
                settings.wecom.corp_id.clone(),
                settings.wecom.secret.expose(),
                settings.wecom.agent_id,
            ))
            .spawn()
            .await
            .unwrap();
        sim.set_per_user_minute_limit(None);
        settings.wecom.api_base = sim.base_url();
        let store: Arc<dyn kaitong::store::Store> = match std::env::var("KAITONG_BENCH_REDIS_URL") {
            Ok(url) => Arc::new(
                kaitong::store::RedisStore::open(&url, &format!("bench{}:", rand::random::<u32>()))
                    .unwrap(),
            ),
            Err(_) => {
                Arc::new(kaitong::store::EmbeddedStore::open(dir.path().join("k.db")).unwrap())
            }
        };
        let parts = kaitong::startup::Parts::build(&settings, store).unwrap();
        let filed_at = chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 11, 28, 9, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let files = (0..NOTICES).map(|i| {
            let ledger = Arc::clone(&parts.ledger);
            async move {
                let form = FiledForm {
                    form_id: format!("bench{i}"),
                    service: ServiceId(7),
                    service_name: "电子发票".into(),
                    team: Team::Functional,
                    routing: FilingRoute::ResourcePlatform,
                    window: Window::DailyBatch,
                    answers: Answers::new(),
                    summary: vec![("卖家账号".into(), format!("acct{i}"))],
                    resubmit_of: None,
                    requester: Requester {
                        user: UserId::parse(&format!("member{i}")).unwrap(),
                        channel: ChannelKind::App,
                        conversation: Conversation::Direct,
                    },
                };
                ledger.file(form, filed_at).await.unwrap();
            }
        });
        // As many concurrent filings as a busy afternoon could bring, not all 10,000 at once.
        use futures::StreamExt;
        futures::stream::iter(files)
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
        let push_at = filed_at + chrono::Duration::hours(9);
        let started = Instant::now();
        parts.background(&settings).push.tick(push_at).await;
        let mut passes = 0;
        while sim.sent_messages().len() < NOTICES && passes < 100 {
            parts
                .outbox
                .run_pass(&parts.transports, push_at)
                .await
                .unwrap();
            passes += 1;
        }
        let elapsed = started.elapsed();
        let sent = sim.sent_messages();
        let mut users: Vec<&String> = sent.iter().flat_map(|m| &m.touser).collect();
        users.sort();
        let distinct = {
            let mut u = users.clone();
            u.dedup();
            u.len()
        };
        println!(
            "{}",
            serde_json::json!({
                "notices": NOTICES,
                "delivered": sent.len(),
                "distinct_recipients": distinct,
                "duplicates": sent.len() - distinct,
                "seconds": elapsed.as_secs_f64(),
                "store": std::env::var("KAITONG_BENCH_REDIS_URL").map_or("embedded", |_| "redis"),
            })
        );
    });
}
