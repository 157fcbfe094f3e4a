//! The WeCom API client against the in-repo simulator: token caching and refresh, error
//! classification, message splitting, duplicate check, media and template-card updates.
#![allow(clippy::unwrap_used)]

// Test names carry a `wecom::` prefix so `cargo test --test it --lib wecom::` runs them with the
// library's own `wecom::` tests.
mod wecom {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use kaitong::wecom::TEXT_LIMIT_BYTES;
    use kaitong::wecom::api::{
        ApiError, ApiSettings, DuplicateCheck, MediaKind, MessageBody, OutboundMessage, WecomApi,
    };
    use kaitong::wecom::cards::{Button, ButtonInteraction, MainTitle, TemplateCard};
    use kaitong_dev::simulator::{
        DEFAULT_AGENT_ID, DEFAULT_CORP_ID, DEFAULT_SECRET, SimulatedApp, SimulatorHandle,
        WecomSimulator,
    };

    async fn simulator() -> SimulatorHandle {
        WecomSimulator::start().await.unwrap()
    }

    fn client(sim: &SimulatorHandle) -> WecomApi {
        WecomApi::new(
            sim.base_url(),
            DEFAULT_CORP_ID,
            DEFAULT_SECRET.to_owned(),
            DEFAULT_AGENT_ID,
        )
        .unwrap()
    }

    fn errcode(result: Result<impl std::fmt::Debug, ApiError>) -> i64 {
        result.unwrap_err().errcode().expect("a WeCom errcode")
    }

    #[tokio::test]
    async fn token_is_fetched_once_for_many_sends() {
        let sim = simulator().await;
        let api = client(&sim);
        for n in 0..5 {
            api.send_text(&["zhangsan"], &format!("hello {n}"), None)
                .await
                .unwrap();
        }
        assert_eq!(sim.gettoken_calls(), 1);
        let sent = sim.sent_messages();
        assert_eq!(sent.len(), 5);
        assert_eq!(sent[0].touser, vec!["zhangsan"]);
        assert_eq!(sent[0].msgtype, "text");
        assert_eq!(sent[4].content, "hello 4");
    }

    #[tokio::test]
    async fn concurrent_sends_share_one_token_refresh() {
        let sim = simulator().await;
        // Slow gettoken widens the window in which callers would race to refresh.
        sim.set_delay(Duration::from_millis(100));
        sim.set_per_user_minute_limit(None);
        let api = Arc::new(client(&sim));
        let sends = (0..20).map(|n| {
            let api = api.clone();
            tokio::spawn(async move { api.send_text(&["lisi"], &format!("m{n}"), None).await })
        });
        for result in futures::future::join_all(sends).await {
            result.unwrap().unwrap();
        }
        assert_eq!(sim.gettoken_calls(), 1);

        // After WeCom expires the token, the whole crowd again shares a single refresh.
        sim.expire_tokens();
        let sends = (0..20).map(|n| {
            let api = api.clone();
            tokio::spawn(async move { api.send_text(&["lisi"], &format!("again {n}"), None).await })
        });
        for result in futures::future::join_all(sends).await {
            result.unwrap().unwrap();
        }
        assert_eq!(sim.gettoken_calls(), 2);
        assert_eq!(sim.sent_messages().len(), 40);
    }

    #[tokio::test]
    async fn expired_token_mid_stream_is_refreshed_and_the_call_retried_once() {
        let sim = simulator().await;
        let api = client(&sim);
        api.send_text(&["zhangsan"], "before", None).await.unwrap();
        sim.expire_tokens();
        api.send_text(&["zhangsan"], "after", None).await.unwrap();
        assert_eq!(sim.gettoken_calls(), 2);
        let contents: Vec<_> = sim.sent_messages().into_iter().map(|m| m.content).collect();
        assert_eq!(contents, ["before", "after"]);
    }

    #[tokio::test]
    async fn invalid_token_is_refreshed_and_the_call_retried_once() {
        let sim = simulator().await;
        let api = client(&sim);
        api.send_text(&["zhangsan"], "one", None).await.unwrap();
        sim.revoke_tokens();
        api.send_text(&["zhangsan"], "two", None).await.unwrap();
        assert_eq!(sim.gettoken_calls(), 2);

        // An injected 40014 is treated the same way.
        sim.fail_next(1, 40014);
        api.send_text(&["zhangsan"], "three", None).await.unwrap();
        assert_eq!(sim.gettoken_calls(), 3);
        assert_eq!(sim.sent_messages().len(), 3);
    }

    #[tokio::test]
    async fn token_rejected_twice_is_not_retried_forever() {
        let sim = simulator().await;
        let api = client(&sim);
        sim.fail_next(2, 42001);
        let error = api.send_text(&["zhangsan"], "x", None).await.unwrap_err();
        assert_eq!(error.errcode(), Some(42001));
        assert!(sim.sent_messages().is_empty());
        // The third attempt (a new call) goes through.
        api.send_text(&["zhangsan"], "x", None).await.unwrap();
    }

    #[tokio::test]
    async fn rate_limit_is_retryable_with_a_one_minute_hint() {
        let sim = simulator().await;
        let api = client(&sim);
        sim.fail_next(1, 45009);
        let error = api.send_text(&["zhangsan"], "x", None).await.unwrap_err();
        assert!(matches!(error, ApiError::WeCom { errcode: 45009, .. }));
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(error.config_problem(), None);
        api.send_text(&["zhangsan"], "x", None).await.unwrap();

        sim.fail_next(1, -1);
        let busy = api.send_text(&["zhangsan"], "y", None).await.unwrap_err();
        assert!(busy.is_retryable());
        assert_eq!(
            busy.retry_after(),
            None,
            "no rule of WeCom's: the outbox's backoff"
        );
    }

    #[tokio::test]
    async fn untrusted_ip_and_missing_permission_are_config_problems() {
        let sim = simulator().await;
        let api = client(&sim);
        sim.fail_next(1, 60020);
        let error = api.send_text(&["zhangsan"], "x", None).await.unwrap_err();
        assert!(!error.is_retryable());
        let hint = error.config_problem().unwrap();
        assert!(hint.contains("企业可信IP") && hint.contains("trusted IP"));

        sim.fail_next(1, 48002);
        let error = api.send_text(&["zhangsan"], "x", None).await.unwrap_err();
        assert_eq!(error.errcode(), Some(48002));
        assert!(error.config_problem().unwrap().contains("visibility"));
    }

    #[tokio::test]
    async fn wrong_credentials_are_config_problems_and_never_echo_the_secret() {
        let sim = simulator().await;
        let wrong_secret = WecomApi::new(
            sim.base_url(),
            DEFAULT_CORP_ID,
            "not-the-secret-xyz".to_owned(),
            DEFAULT_AGENT_ID,
        )
        .unwrap();
        let error = wrong_secret
            .send_text(&["zhangsan"], "x", None)
            .await
            .unwrap_err();
        assert_eq!(error.errcode(), Some(40001));
        assert!(error.config_problem().is_some());
        assert!(!format!("{error} {error:?}").contains("not-the-secret-xyz"));

        let wrong_corp = WecomApi::new(
            sim.base_url(),
            "wwunknown",
            DEFAULT_SECRET.to_owned(),
            DEFAULT_AGENT_ID,
        )
        .unwrap();
        let error = wrong_corp.send_text(&["zhangsan"], "x", None).await;
        assert_eq!(errcode(error), 40013);

        let wrong_agent = WecomApi::new(
            sim.base_url(),
            DEFAULT_CORP_ID,
            DEFAULT_SECRET.to_owned(),
            1,
        )
        .unwrap();
        assert_eq!(
            errcode(wrong_agent.send_text(&["zhangsan"], "x", None).await),
            40056
        );
    }

    #[tokio::test]
    async fn http_500_is_retryable() {
        let sim = simulator().await;
        let api = client(&sim);
        sim.fail_next_http(1, 500);
        let error = api.send_text(&["zhangsan"], "x", None).await.unwrap_err();
        assert!(matches!(error, ApiError::Http { status: 500, .. }));
        assert!(error.is_retryable());
        api.send_text(&["zhangsan"], "x", None).await.unwrap();
    }

    #[tokio::test]
    async fn long_text_is_split_between_lines_and_delivered_in_order() {
        let sim = simulator().await;
        let api = client(&sim);
        let paragraph = "增值服务开通申请：请确认以下信息无误。🙂 Line with ASCII too.\n";
        let text = paragraph.repeat(80); // ~ 7 KB
        let outcome = api.send_text(&["zhangsan"], &text, None).await.unwrap();
        let sent = sim.sent_messages();
        assert!(sent.len() >= 4, "{} parts", sent.len());
        assert_eq!(outcome.part_msgids.len(), sent.len());
        assert_eq!(outcome.msgid, sent.last().unwrap().msgid);
        for (part, msgid) in sent.iter().zip(&outcome.part_msgids) {
            assert!(part.content.len() <= TEXT_LIMIT_BYTES);
            assert_eq!(&part.msgid, msgid);
            // Every part is whole lines (the line break at the seam is not sent).
            assert!(part.content.ends_with("too."), "{}", part.content);
            assert!(part.content.starts_with("增值"), "{}", part.content);
        }
        let rejoined: Vec<&str> = sent.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(rejoined.join("\n"), text.trim_end());
    }

    #[tokio::test]
    async fn unsplit_oversized_and_empty_content_get_wecom_errcodes() {
        let sim = simulator().await;
        let api = client(&sim);
        let oversized = OutboundMessage::new(&["zhangsan"], MessageBody::text("字".repeat(700)));
        assert_eq!(errcode(api.send(&oversized).await), 45002);
        assert_eq!(errcode(api.send_text(&["zhangsan"], "", None).await), 44004);
        assert_eq!(errcode(api.send_text(&[], "hi", None).await), 82001);
        assert!(sim.sent_messages().is_empty());
    }

    #[tokio::test]
    async fn duplicate_check_prevents_a_second_delivery() {
        let sim = simulator().await;
        let api = client(&sim);
        let dedupe = Some(DuplicateCheck::default());
        let first = api
            .send_text(&["zhangsan"], "您的申请已提交", dedupe)
            .await
            .unwrap();
        let second = api
            .send_text(&["zhangsan"], "您的申请已提交", dedupe)
            .await
            .unwrap();
        assert_eq!(first.msgid, second.msgid);
        assert_eq!(sim.sent_messages().len(), 1);
        assert_eq!(sim.duplicates_suppressed(), 1);
        // Without the check WeCom delivers again.
        api.send_text(&["zhangsan"], "您的申请已提交", None)
            .await
            .unwrap();
        assert_eq!(sim.sent_messages().len(), 2);
    }

    #[tokio::test]
    async fn partial_failures_are_reported_not_raised() {
        let sim = simulator().await;
        let api = client(&sim);
        sim.set_invalid_users(&["ghost"]);
        sim.set_unlicensed_users(&["visitor"]);
        let outcome = api
            .send_text(&["zhangsan", "ghost", "visitor"], "hi", None)
            .await
            .unwrap();
        assert_eq!(outcome.invaliduser, vec!["ghost"]);
        assert_eq!(outcome.unlicenseduser, vec!["visitor"]);
        assert_eq!(sim.sent_messages()[0].touser, vec!["zhangsan"]);
        assert_eq!(errcode(api.send_text(&["ghost"], "hi", None).await), 81013);
    }

    #[tokio::test]
    async fn media_get_returns_bytes_and_file_name() {
        let sim = simulator().await;
        let api = client(&sim);
        sim.add_media("MEDIA_PDF", "contract.pdf", b"%PDF-1.4 fake");
        sim.add_media(
            "MEDIA_ZH",
            "营业执照 副本.png",
            &[0x89, b'P', b'N', b'G', 1, 2, 3],
        );

        let pdf = api.media_get("MEDIA_PDF").await.unwrap();
        assert_eq!(pdf.file_name.as_deref(), Some("contract.pdf"));
        assert_eq!(pdf.content_type, "application/pdf");
        assert_eq!(pdf.bytes, b"%PDF-1.4 fake");

        let chinese = api.media_get("MEDIA_ZH").await.unwrap();
        assert_eq!(chinese.file_name.as_deref(), Some("营业执照 副本.png"));
        assert_eq!(chinese.bytes, [0x89, b'P', b'N', b'G', 1, 2, 3]);

        // Plain-text files are not mistaken for error bodies.
        sim.add_media("MEDIA_TXT", "notes.txt", b"{\"not\":\"an error\"}");
        let txt = api.media_get("MEDIA_TXT").await.unwrap();
        assert_eq!(txt.bytes, b"{\"not\":\"an error\"}");
    }

    #[tokio::test]
    async fn media_get_maps_the_json_error_body() {
        let sim = simulator().await;
        let api = client(&sim);
        let error = api.media_get("NO_SUCH_MEDIA").await.unwrap_err();
        assert!(
            matches!(error, ApiError::WeCom { errcode: 40007, .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn media_upload_round_trips_through_media_get() {
        let sim = simulator().await;
        let api = client(&sim);
        let bytes: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024).collect();
        let media_id = api
            .media_upload(MediaKind::File, "开通申请表.xlsx", &bytes)
            .await
            .unwrap();
        let stored = sim.media(&media_id).unwrap();
        assert_eq!(stored.file_name, "开通申请表.xlsx");
        let fetched = api.media_get(&media_id).await.unwrap();
        assert_eq!(fetched.file_name.as_deref(), Some("开通申请表.xlsx"));
        assert_eq!(fetched.bytes, bytes);

        // WeCom refuses files of 5 bytes or fewer.
        let tiny = api.media_upload(MediaKind::Image, "a.png", b"12345").await;
        assert_eq!(errcode(tiny), 40006);
    }

    #[tokio::test]
    async fn template_card_response_code_is_single_use() {
        let sim = simulator().await;
        let api = client(&sim);
        let card = TemplateCard::ButtonInteraction(ButtonInteraction::new(
            "开通助手",
            MainTitle::new("开通申请", "请确认"),
            "task-1",
            vec![Button::new("确认", 1, "confirm")],
        ));
        let message = OutboundMessage::new(
            &["zhangsan"],
            MessageBody::TemplateCard {
                template_card: card,
            },
        );
        let outcome = api.send(&message).await.unwrap();
        let code = outcome.response_code.expect("interaction cards get a code");
        assert_eq!(sim.sent_messages()[0].msgtype, "template_card");

        api.update_template_card(&["zhangsan"], &code, "已确认")
            .await
            .unwrap();
        let updates = sim.card_updates();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].replace_name.as_deref(), Some("已确认"));
        assert_eq!(updates[0].userids, vec!["zhangsan"]);

        let reuse = api.update_template_card(&["zhangsan"], &code, "再次").await;
        assert_eq!(errcode(reuse), 40058);

        // A code from a click callback works the same way.
        let clicked = sim.issue_response_code(DEFAULT_AGENT_ID);
        api.update_template_card(&["zhangsan"], &clicked, "已处理")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn slow_api_times_out_as_transport_without_hanging() {
        let sim = simulator().await;
        let settings = ApiSettings {
            request_timeout: Duration::from_millis(300),
            ..ApiSettings::default()
        };
        let api = WecomApi::with_settings(
            sim.base_url(),
            DEFAULT_CORP_ID,
            DEFAULT_SECRET.to_owned(),
            DEFAULT_AGENT_ID,
            settings,
        )
        .unwrap();
        api.send_text(&["zhangsan"], "warm the token cache", None)
            .await
            .unwrap();
        sim.set_delay(Duration::from_secs(5));
        let started = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(3),
            api.send_text(&["zhangsan"], "slow", None),
        )
        .await
        .expect("the client's own timeout fires first");
        let error = result.unwrap_err();
        assert!(
            matches!(&error, ApiError::Transport { source, .. } if source.is_timeout()),
            "{error:?}"
        );
        assert!(error.is_retryable());
        assert!(started.elapsed() < Duration::from_secs(2));
        // The URL (with the access token) is stripped from transport errors.
        assert!(!format!("{error} {error:?}").contains("access_token"));
    }

    #[tokio::test]
    async fn per_member_minute_cap_silently_drops_the_excess() {
        let sim = simulator().await;
        let api = client(&sim);
        for n in 0..32 {
            api.send_text(&["zhangsan"], &format!("n{n}"), None)
                .await
                .unwrap();
        }
        assert_eq!(sim.sent_messages().len(), 30);
        assert_eq!(sim.rate_dropped(), 2);
    }

    #[tokio::test]
    async fn stopped_simulator_refuses_connections() {
        let sim = simulator().await;
        let api = client(&sim);
        api.send_text(&["zhangsan"], "pooled connection", None)
            .await
            .unwrap();
        sim.stop().await;
        let error = api.send_text(&["zhangsan"], "x", None).await.unwrap_err();
        assert!(matches!(error, ApiError::Transport { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn each_app_has_its_own_token() {
        let sim = WecomSimulator::new()
            .with_app(SimulatedApp::new("wwcorp", "secret-a", 1001))
            .with_app(SimulatedApp::new("wwcorp", "secret-b", 1002))
            .spawn()
            .await
            .unwrap();
        let app_a = WecomApi::new(sim.base_url(), "wwcorp", "secret-a".to_owned(), 1001).unwrap();
        let app_b = WecomApi::new(sim.base_url(), "wwcorp", "secret-b".to_owned(), 1002).unwrap();
        app_a.send_text(&["u"], "from a", None).await.unwrap();
        app_b.send_text(&["u"], "from b", None).await.unwrap();
        assert_eq!(sim.gettoken_calls(), 2);
        let agents: Vec<u32> = sim.sent_messages().iter().map(|m| m.agent_id).collect();
        assert_eq!(agents, [1001, 1002]);
        // A token is bound to its app: app b's secret cannot send as agent 1001.
        let mixed = WecomApi::new(sim.base_url(), "wwcorp", "secret-b".to_owned(), 1001).unwrap();
        assert_eq!(errcode(mixed.send_text(&["u"], "x", None).await), 40056);
    }

    #[tokio::test]
    async fn media_larger_than_the_cap_is_refused() {
        let sim = simulator().await;
        let settings = ApiSettings {
            media_body_cap: 1000,
            ..ApiSettings::default()
        };
        let api = WecomApi::with_settings(
            sim.base_url(),
            DEFAULT_CORP_ID,
            DEFAULT_SECRET.to_owned(),
            DEFAULT_AGENT_ID,
            settings,
        )
        .unwrap();
        sim.add_media("BIG", "big.bin", &[7u8; 4000]);
        let error = api.media_get("BIG").await.unwrap_err();
        assert!(
            matches!(error, ApiError::BodyTooLarge { limit: 1000, .. }),
            "{error:?}"
        );
    }

    /// Issue 22: the contacts calls, against WeCom's shapes and errcodes in the simulator.
    #[tokio::test]
    async fn user_get_and_department_list_read_contacts_and_refusals_keep_their_errcode() {
        let sim = simulator().await;
        let api = client(&sim);
        sim.add_department(1, "万店总部", 0);
        sim.add_department(7, "华南销售部", 1);
        sim.add_member("wangwu", "王五", &[1, 7], Some("wangwu@example.com"));
        sim.add_member("zhaoliu", "赵六", &[7], None);
        sim.hide_members(&["zhaoliu"]);

        let member = api.user_get("WangWu").await.unwrap();
        assert_eq!(member.userid, "wangwu");
        assert_eq!(member.name, "王五");
        assert_eq!(member.departments(), vec![1, 7], "main department first");
        assert_eq!(member.mail(), Some("wangwu@example.com"));
        let departments = api.department_list().await.unwrap();
        assert_eq!(
            departments
                .iter()
                .map(|d| (d.id, d.name.as_str(), d.parentid))
                .collect::<Vec<_>>(),
            vec![(1, "万店总部", 0), (7, "华南销售部", 1)]
        );

        let hidden = api.user_get("zhaoliu").await.unwrap_err();
        assert_eq!(hidden.errcode(), Some(60011), "{hidden}");
        assert!(!hidden.is_retryable());
        let unknown = api.user_get("nobody").await.unwrap_err();
        assert_eq!(unknown.errcode(), Some(60111), "{unknown}");
        let missing = api.user_get("").await.unwrap_err();
        assert_eq!(missing.errcode(), Some(41009), "{missing}");
    }
}
