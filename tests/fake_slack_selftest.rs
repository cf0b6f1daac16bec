//! Proves the fake Slack against a real Slack client, slack-morphism 2.31: its Web API client
//! reads every answer the fake gives, its Socket Mode listener connects, receives and acks
//! envelopes, and its signature verifier accepts what the fake's sender signs.
//!
//! It also pins the library facts the adapter is designed around (see issue 10): the connector
//! must be built by hand to reach plain HTTP over HTTP/1, a 429's `Retry-After` is honoured only
//! with rate control on, an envelope is acked only after its callback returns (so a slow one is
//! redelivered), two connections are opened by default, and `disconnect` or a dropped
//! connection is followed by a new one.

#[path = "support/fake_slack.rs"]
mod fake_slack;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_slack::{Failure, FakeSlack, FakeSlackConfig, SignedSender, ids};
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

const WAIT: Duration = Duration::from_secs(10);

type Connector = SlackClientHyperConnector<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
>;

/// The connector the adapter will build: plain HTTP allowed (for the fake), HTTP/1 enabled.
fn connector(fake: &FakeSlack) -> Connector {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    SlackClientHyperConnector::with_connector(https).with_slack_api_url(&fake.api_url())
}

fn client(fake: &FakeSlack) -> SlackClient<Connector> {
    SlackClient::new(connector(fake))
}

fn bot_token() -> SlackApiToken {
    SlackApiToken::new(fake_slack::BOT_TOKEN.into())
}

fn app_token() -> SlackApiToken {
    SlackApiToken::new(fake_slack::APP_TOKEN.into())
}

fn api_error<T: std::fmt::Debug>(result: ClientResult<T>) -> String {
    match result {
        Err(SlackClientError::ApiError(e)) => e.code,
        other => panic!("expected a Slack API error, got {other:?}"),
    }
}

async fn start() -> FakeSlack {
    FakeSlack::start(FakeSlackConfig::default()).await
}

#[tokio::test]
async fn auth_test_knows_the_bot_and_rejects_bad_or_wrong_tokens() {
    let fake = start().await;
    let client = client(&fake);

    let me = client.open_session(&bot_token()).auth_test().await.unwrap();
    assert_eq!(me.user_id.0, ids::BOT_USER);
    assert_eq!(me.team_id.0, ids::TEAM);
    assert_eq!(me.bot_id.unwrap().0, ids::BOT_ID);

    let forged = SlackApiToken::new("xoxb-not-a-real-token".into());
    assert_eq!(
        api_error(client.open_session(&forged).auth_test().await),
        "invalid_auth"
    );
    assert_eq!(
        api_error(client.open_session(&app_token()).auth_test().await),
        "not_allowed_token_type",
        "auth.test takes bot tokens, not app-level ones"
    );
    let open = SlackApiAppsConnectionOpenRequest::new();
    assert_eq!(
        api_error(
            client
                .open_session(&bot_token())
                .apps_connections_open(&open)
                .await
        ),
        "not_allowed_token_type",
        "apps.connections.open takes the app-level token"
    );
    let url = client
        .open_session(&app_token())
        .apps_connections_open(&open)
        .await
        .unwrap()
        .url;
    assert!(url.0.as_str().starts_with("ws://127.0.0.1:"), "{}", url.0);
    fake.revoke_tokens();
    assert_eq!(
        api_error(client.open_session(&bot_token()).auth_test().await),
        "token_revoked"
    );
    let methods: Vec<String> = fake.calls().iter().map(|c| c.method.clone()).collect();
    assert_eq!(methods[0], "auth.test");
    assert_eq!(
        fake.calls()[0].token.as_deref(),
        Some(fake_slack::BOT_TOKEN)
    );
}

#[tokio::test]
async fn posted_blocks_are_kept_and_can_be_updated_and_ephemerals_reach_one_member() {
    let fake = start().await;
    let client = client(&fake);
    let token = bot_token();
    let session = client.open_session(&token);
    let blocks: Vec<SlackBlock> = serde_json::from_value(json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Heads*"},
         "fields": [{"type": "mrkdwn", "text": "*flips*\n1"}]},
        {"type": "actions", "block_id": "cogbox-buttons", "elements": [
            {"type": "button", "action_id": "b0", "text": {"type": "plain_text", "text": "Again"},
             "value": "/coinflip"}]},
    ]))
    .unwrap();
    let content = SlackMessageContent::new()
        .with_text("Heads".into())
        .with_blocks(blocks);

    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            ids::RANDOM.into(),
            content,
        ))
        .await
        .unwrap();

    let stored = fake.messages(ids::RANDOM);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["ts"], posted.ts.0.as_str());
    assert_eq!(stored[0]["blocks"][1]["elements"][0]["value"], "/coinflip");

    let edit = SlackMessageContent::new().with_text("Tails".into());
    session
        .chat_update(&SlackApiChatUpdateRequest::new(
            ids::RANDOM.into(),
            edit,
            posted.ts.clone(),
        ))
        .await
        .unwrap();
    let stored = fake.messages(ids::RANDOM);
    assert_eq!(stored[0]["text"], "Tails");
    assert_eq!(
        stored[0].get("blocks"),
        None,
        "an update replaces the blocks too"
    );

    let private = SlackMessageContent::new().with_text("only you".into());
    session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
            ids::RANDOM.into(),
            ids::MEMBER.into(),
            private.clone(),
        ))
        .await
        .unwrap();
    assert_eq!(fake.ephemerals()[0]["user"], ids::MEMBER);

    let stranger = session
        .chat_post_ephemeral(&SlackApiChatPostEphemeralRequest::new(
            ids::DM.into(),
            ids::ADMIN.into(),
            private.clone(),
        ))
        .await;
    assert_eq!(api_error(stranger), "user_not_in_channel");
    let outside = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            ids::QUIET.into(),
            private.clone(),
        ))
        .await;
    assert_eq!(
        api_error(outside),
        "not_in_channel",
        "the bot is not in #quiet"
    );
    let nowhere = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            "C0NOWHERE".into(),
            private,
        ))
        .await;
    assert_eq!(api_error(nowhere), "channel_not_found");
}

#[tokio::test]
async fn block_kit_limits_are_enforced_as_slack_does() {
    let fake = start().await;
    let client = client(&fake);
    let too_long: Vec<SlackBlock> = serde_json::from_value(json!([
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "b0", "text": {"type": "plain_text", "text": "x".repeat(76)}}]},
    ]))
    .unwrap();
    let content = SlackMessageContent::new().with_blocks(too_long);

    let refused = client
        .open_session(&bot_token())
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            ids::RANDOM.into(),
            content,
        ))
        .await;

    assert_eq!(api_error(refused), "invalid_blocks");
    assert!(fake.messages(ids::RANDOM).is_empty());
    let empty = client
        .open_session(&bot_token())
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            ids::RANDOM.into(),
            SlackMessageContent::new(),
        ))
        .await;
    assert_eq!(api_error(empty), "no_text");
}

#[tokio::test]
async fn users_info_carries_admin_flags_and_kick_follows_slacks_rules() {
    let fake = start().await;
    let client = client(&fake);
    let token = bot_token();
    let session = client.open_session(&token);

    let admin = session
        .users_info(&SlackApiUsersInfoRequest::new(ids::ADMIN.into()))
        .await
        .unwrap()
        .user;
    let flags = admin.flags;
    assert_eq!((flags.is_admin, flags.is_owner), (Some(true), Some(false)));
    let member = session
        .users_info(&SlackApiUsersInfoRequest::new(ids::MEMBER.into()))
        .await
        .unwrap()
        .user;
    assert_eq!(member.flags.is_admin, Some(false));
    let unknown = session
        .users_info(&SlackApiUsersInfoRequest::new("U0NOBODY1".into()))
        .await;
    assert_eq!(api_error(unknown), "user_not_found");

    let kick = |channel: &str, user: &str| {
        SlackApiConversationsKickRequest::new(channel.into(), user.into())
    };
    session
        .conversations_kick(&kick(ids::RANDOM, ids::TARGET))
        .await
        .unwrap();
    assert!(!fake.members(ids::RANDOM).contains(&ids::TARGET.to_owned()));
    for (channel, user, error) in [
        (ids::RANDOM, ids::TARGET, "not_in_channel"),
        (ids::GENERAL, ids::MEMBER, "cant_kick_from_general"),
        (ids::RANDOM, ids::BOT_USER, "cant_kick_self"),
        (
            ids::DM,
            ids::MEMBER,
            "method_not_supported_for_channel_type",
        ),
    ] {
        assert_eq!(
            api_error(session.conversations_kick(&kick(channel, user)).await),
            error,
            "{channel} {user}"
        );
    }
}

#[tokio::test]
async fn conversations_open_finds_or_opens_the_direct_message_with_a_member() {
    let fake = start().await;
    let client = client(&fake);
    let token = bot_token();
    let session = client.open_session(&token);
    let open = |user: &str| SlackApiConversationsOpenRequest::new().with_users(vec![user.into()]);

    let existing = session
        .conversations_open(&open(ids::MEMBER))
        .await
        .unwrap();
    assert_eq!(
        existing.channel.id.0,
        ids::DM,
        "mia's DM with the bot exists"
    );
    let opened = session
        .conversations_open(&open(ids::TARGET))
        .await
        .unwrap();
    let again = session
        .conversations_open(&open(ids::TARGET))
        .await
        .unwrap();
    assert_eq!(
        opened.channel.id, again.channel.id,
        "opened once, then found"
    );
    let posted = session
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            opened.channel.id.clone(),
            SlackMessageContent::new().with_text("You were warned".into()),
        ))
        .await;
    assert!(posted.is_ok(), "the bot can write in it: {posted:?}");
    assert_eq!(
        api_error(session.conversations_open(&open("U0NOBODY1")).await),
        "user_not_found"
    );
}

#[tokio::test]
async fn users_conversations_lists_the_channels_a_member_shares_with_the_bot() {
    let fake = start().await;
    let client = client(&fake);
    let token = bot_token();
    let session = client.open_session(&token);
    let of = |user: &str, types: Vec<SlackConversationType>| {
        SlackApiUsersConversationsRequest::new()
            .with_user(user.into())
            .with_types(types)
            .with_exclude_archived(true)
    };
    let both = vec![
        SlackConversationType::Public,
        SlackConversationType::Private,
    ];
    let listed = session
        .users_conversations(&of(ids::TARGET, both))
        .await
        .unwrap();
    let names: Vec<String> = listed.channels.iter().map(|c| c.id.0.clone()).collect();
    assert_eq!(names, [ids::GENERAL, ids::QUIET, ids::RANDOM], "no DM");
    let member = |id: &str| listed.channels.iter().find(|c| c.id.0 == id).unwrap();
    assert_eq!(member(ids::QUIET).flags.is_member, Some(false));
    assert_eq!(member(ids::RANDOM).flags.is_member, Some(true));
    let unknown = session
        .users_conversations(&of("U0NOBODY1", vec![SlackConversationType::Public]))
        .await;
    assert_eq!(api_error(unknown), "user_not_found");
}

#[tokio::test]
async fn conversations_info_says_which_channel_is_the_general_one() {
    let fake = start().await;
    let client = client(&fake);
    let token = bot_token();
    let session = client.open_session(&token);
    let info = |channel: &str| SlackApiConversationsInfoRequest::new(channel.into());

    let general = session
        .conversations_info(&info(ids::GENERAL))
        .await
        .unwrap();
    assert_eq!(general.channel.flags.is_general, Some(true));
    let random = session
        .conversations_info(&info(ids::RANDOM))
        .await
        .unwrap();
    assert_eq!(random.channel.flags.is_general, Some(false));
    assert_eq!(random.channel.name.as_deref(), Some("random"));
    let missing = session.conversations_info(&info("C0NOWHERE")).await;
    assert_eq!(api_error(missing), "channel_not_found");
}

#[tokio::test]
async fn a_missing_scope_is_named() {
    let fake = FakeSlack::start(FakeSlackConfig {
        scopes: vec!["chat:write".into()],
        ..FakeSlackConfig::default()
    })
    .await;
    let client = client(&fake);

    let refused = client
        .open_session(&bot_token())
        .conversations_kick(&SlackApiConversationsKickRequest::new(
            ids::RANDOM.into(),
            ids::TARGET.into(),
        ))
        .await;

    assert_eq!(api_error(refused), "missing_scope");
    assert_eq!(fake.calls()[0].error.as_deref(), Some("missing_scope"));
}

#[tokio::test]
async fn retry_after_is_waited_out_only_with_rate_control_on() {
    let fake = start().await;
    fake.fail_next("chat.postMessage", Failure::RateLimited(1));
    let content = SlackMessageContent::new().with_text("hi".into());
    let request = SlackApiChatPostMessageRequest::new(ids::RANDOM.into(), content);

    let plain = client(&fake);
    match plain
        .open_session(&bot_token())
        .chat_post_message(&request)
        .await
    {
        Err(SlackClientError::RateLimitError(e)) => {
            assert_eq!(e.retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("without rate control a 429 is the caller's problem: {other:?}"),
    }

    fake.fail_next("chat.postMessage", Failure::RateLimited(1));
    let controlled = SlackClient::new(
        connector(&fake).with_rate_control(SlackApiRateControlConfig::new().with_max_retries(2)),
    );
    let started = Instant::now();
    controlled
        .open_session(&bot_token())
        .chat_post_message(&request)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let posts = fake.calls_of("chat.postMessage");
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[1].status, 429);
    assert!(posts[2].at.duration_since(posts[1].at) >= Duration::from_secs(1));
}

#[tokio::test]
async fn the_per_channel_post_limit_answers_429_with_retry_after() {
    let fake = start().await;
    fake.set_rate_limit("chat.postMessage", 2, Duration::from_secs(30));
    let client = client(&fake);
    let token = bot_token();
    let session = client.open_session(&token);
    let post = |channel: &str| {
        SlackApiChatPostMessageRequest::new(
            channel.into(),
            SlackMessageContent::new().with_text("hi".into()),
        )
    };
    session.chat_post_message(&post(ids::RANDOM)).await.unwrap();
    session.chat_post_message(&post(ids::RANDOM)).await.unwrap();

    match session.chat_post_message(&post(ids::RANDOM)).await {
        Err(SlackClientError::RateLimitError(e)) => {
            let wait = e.retry_after.expect("Retry-After");
            assert!(
                (Duration::from_secs(29)..=Duration::from_secs(30)).contains(&wait),
                "{wait:?}"
            );
        }
        other => panic!("expected a 429: {other:?}"),
    }
    session
        .chat_post_message(&post(ids::GENERAL))
        .await
        .expect("another channel has its own budget");
}

#[tokio::test]
async fn form_bodies_and_query_tokens_work_and_json_bodies_need_the_header() {
    let fake = start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/chat.postMessage", fake.api_url());

    let form: Value = http
        .post(&url)
        .form(&[
            ("token", fake_slack::BOT_TOKEN),
            ("channel", ids::RANDOM),
            (
                "blocks",
                r#"[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]"#,
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(form["ok"], true, "{form}");
    assert_eq!(
        fake.messages(ids::RANDOM)[0]["blocks"][0]["type"],
        "section"
    );

    let body = json!({"token": fake_slack::BOT_TOKEN, "channel": ids::RANDOM, "text": "hi"});
    let in_body: Value = http
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        in_body["error"], "not_authed",
        "a JSON body's token is ignored"
    );

    let no_charset: Value = http
        .post(&url)
        .bearer_auth(fake_slack::BOT_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(no_charset["ok"], true);
    assert_eq!(no_charset["warning"], "missing_charset");

    let unknown = http
        .post(format!("{}/chat.explode", fake.api_url()))
        .bearer_auth(fake_slack::BOT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

// ---------------------------------------------------------------------------------------------
// Socket Mode

/// What the listener's callbacks saw, shared through slack-morphism's user state.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<String>>,
    /// How long the push callback sleeps before returning.
    push_delay: Mutex<Duration>,
}

async fn seen(states: &SlackClientEventsUserState) -> Arc<Seen> {
    let guard = states.read().await;
    Arc::clone(
        guard
            .get_user_state::<Arc<Seen>>()
            .expect("the shared record"),
    )
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let text = event.text.unwrap_or_default();
    seen(&states)
        .await
        .events
        .lock()
        .unwrap()
        .push(format!("command {} {text}", event.command.0));
    Ok(SlackCommandEventResponse::new(
        SlackMessageContent::new().with_text(format!("rolled {text}")),
    ))
}

async fn on_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let seen = seen(&states).await;
    let line = match event.event {
        SlackEventCallbackBody::AppMention(m) => {
            format!(
                "mention {} {}",
                m.user.0,
                m.content.text.unwrap_or_default()
            )
        }
        SlackEventCallbackBody::Message(m) => format!(
            "message {} {}",
            m.sender.user.map(|u| u.0).unwrap_or_default(),
            m.content.and_then(|c| c.text).unwrap_or_default()
        ),
        other => format!("other {other:?}"),
    };
    seen.events.lock().unwrap().push(line);
    let delay = *seen.push_delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    Ok(())
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackClient<Connector>>,
    states: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let line = match event {
        SlackInteractionEvent::BlockActions(a) => {
            let action = &a.actions.unwrap_or_default()[0];
            format!(
                "button {} {}",
                a.user.map(|u| u.id.0).unwrap_or_default(),
                action.value.clone().unwrap_or_default()
            )
        }
        other => format!("other {other:?}"),
    };
    seen(&states).await.events.lock().unwrap().push(line);
    Ok(())
}

struct Listening {
    listener: SlackClientSocketModeListener<Connector>,
    seen: Arc<Seen>,
}

async fn listen(fake: &FakeSlack, connections: u32) -> Listening {
    let seen = Arc::new(Seen::default());
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(Arc::new(client(fake)))
            .with_user_state(Arc::clone(&seen)),
    );
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_command)
        .with_push_events(on_push)
        .with_interaction_events(on_interaction);
    let config = SlackClientSocketModeConfig::new()
        .with_max_connections_count(connections)
        .with_initial_backoff_in_seconds(0)
        .with_reconnect_timeout_in_seconds(1);
    let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
    listener.listen_for(&app_token()).await.unwrap();
    listener.start().await;
    Listening { listener, seen }
}

fn events(seen: &Seen) -> Vec<String> {
    seen.events.lock().unwrap().clone()
}

#[tokio::test]
async fn the_listener_connects_twice_by_default_and_each_connection_gets_a_hello() {
    let fake = start().await;
    let record = Arc::new(Seen::default());
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(Arc::new(client(&fake)))
            .with_user_state(Arc::clone(&record)),
    );
    let config = SlackClientSocketModeConfig::new().with_initial_backoff_in_seconds(0);
    let listener = SlackClientSocketModeListener::new(
        &config,
        environment,
        // slack-morphism's hello type cannot be named from outside (its module is shadowed),
        // so the callback is a closure whose argument type is inferred.
        SlackSocketModeListenerCallbacks::new().with_hello_events(
            |event, _client, states| async move {
                let line = format!("hello {}", event.connection_info.app_id.0);
                seen(&states).await.events.lock().unwrap().push(line);
            },
        ),
    );
    listener.listen_for(&app_token()).await.unwrap();
    listener.start().await;

    fake.wait_for_connections(2, WAIT).await;

    assert_eq!(fake.calls_of("apps.connections.open").len(), 2);
    let deadline = Instant::now() + WAIT;
    while events(&record).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(events(&record), ["hello A0COGBOX1", "hello A0COGBOX1"]);
    assert!(
        fake.calls_of("auth.test").is_empty(),
        "slack-morphism never checks the bot token itself"
    );
    listener.shutdown().await;
}

#[tokio::test]
async fn slash_commands_mentions_messages_and_buttons_arrive_and_are_acked() {
    let fake = start().await;
    let client = client(&fake);
    let listening = listen(&fake, 1).await;
    fake.wait_for_connections(1, WAIT).await;
    let posted = client
        .open_session(&bot_token())
        .chat_post_message(&SlackApiChatPostMessageRequest::new(
            ids::RANDOM.into(),
            SlackMessageContent::new().with_text("Heads".into()),
        ))
        .await
        .unwrap();

    let command = fake.send_slash_command(
        ids::MEMBER,
        ids::RANDOM,
        "/cogbox",
        "roll 2d6 <@U0TARGET1|tom>",
    );
    let ack = fake.wait_for_ack(&command, WAIT).await;
    assert!(ack.after.unwrap() < Duration::from_secs(3));
    assert_eq!(
        ack.payload.unwrap()["text"],
        "rolled roll 2d6 <@U0TARGET1|tom>"
    );
    let mention = fake.send_app_mention(ids::MEMBER, ids::RANDOM, "<@U0COGBOT1> roll 2d6");
    fake.wait_for_ack(&mention, WAIT).await;
    let dm = fake.send_direct_message(ids::MEMBER, ids::DM, "roll 2d6");
    fake.wait_for_ack(&dm, WAIT).await;
    let press = fake.send_button_press(ids::ADMIN, ids::RANDOM, &posted.ts.0, "b0", "/coinflip");
    fake.wait_for_ack(&press, WAIT).await;

    assert_eq!(
        events(&listening.seen),
        [
            "command /cogbox roll 2d6 <@U0TARGET1|tom>",
            "mention U0MEMBER1 <@U0COGBOT1> roll 2d6",
            "message U0MEMBER1 roll 2d6",
            "button U0ADMIN01 /coinflip",
        ]
    );
    assert!(
        fake.deliveries().iter().all(|d| d.retry_attempt == 0),
        "nothing was redelivered: {:?}",
        fake.deliveries()
    );
    listening.listener.shutdown().await;
}

/// The `retry_attempt` of each delivery of one envelope, in order.
fn attempts(fake: &FakeSlack, envelope_id: &str) -> Vec<u32> {
    fake.deliveries()
        .iter()
        .filter(|d| d.envelope_id == envelope_id)
        .map(|d| d.retry_attempt)
        .collect()
}

#[tokio::test]
async fn a_slow_callback_delays_the_ack_and_slack_redelivers() {
    let fake = FakeSlack::start(FakeSlackConfig {
        ack_timeout: Duration::from_millis(300),
        max_retries: 3,
        ..FakeSlackConfig::default()
    })
    .await;
    let listening = listen(&fake, 1).await;
    *listening.seen.push_delay.lock().unwrap() = Duration::from_millis(700);
    fake.wait_for_connections(1, WAIT).await;

    let id = fake.send_app_mention(ids::MEMBER, ids::RANDOM, "<@U0COGBOT1> slow");
    let ack = fake.wait_for_ack(&id, WAIT).await;

    assert!(
        ack.after.unwrap() >= Duration::from_millis(700),
        "acked only after the callback"
    );
    let attempts = attempts(&fake, &id);
    assert!(
        attempts.starts_with(&[0, 1]),
        "redelivered while the callback ran: {attempts:?}"
    );
    listening.listener.shutdown().await;
}

#[tokio::test]
async fn an_unacked_envelope_is_retried_at_most_max_retries_times() {
    let fake = FakeSlack::start(FakeSlackConfig {
        ack_timeout: Duration::from_millis(100),
        max_retries: 2,
        ..FakeSlackConfig::default()
    })
    .await;
    let listening = listen(&fake, 1).await;
    *listening.seen.push_delay.lock().unwrap() = Duration::from_secs(60);
    fake.wait_for_connections(1, WAIT).await;

    let id = fake.send_app_mention(ids::MEMBER, ids::RANDOM, "<@U0COGBOT1> never acked");
    tokio::time::sleep(Duration::from_millis(600)).await;

    assert_eq!(attempts(&fake, &id), [0, 1, 2]);
    listening.listener.shutdown().await;
}

#[tokio::test]
async fn refresh_requested_and_a_dropped_connection_are_followed_by_a_new_connection() {
    let fake = start().await;
    let listening = listen(&fake, 1).await;
    fake.wait_for_connections(1, WAIT).await;

    fake.disconnect("refresh_requested");
    let reconnected = fake
        .wait_for_call("apps.connections.open", |_| true, WAIT)
        .await;
    let deadline = Instant::now() + WAIT;
    while fake.connects() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fake.connects(),
        2,
        "a new connection after refresh_requested"
    );
    drop(reconnected);

    fake.drop_connections();
    while fake.connects() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.connects(), 3, "a new connection after a drop");
    fake.wait_for_connections(1, WAIT).await;
    let id = fake.send_app_mention(ids::MEMBER, ids::RANDOM, "<@U0COGBOT1> still there?");
    fake.wait_for_ack(&id, WAIT).await;
    listening.listener.shutdown().await;
}

#[tokio::test]
async fn a_ticket_opens_one_connection_only() {
    let fake = start().await;
    let url = client(&fake)
        .open_session(&app_token())
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await
        .unwrap()
        .url
        .0;
    let http_url = url.as_str().replacen("ws://", "http://", 1);
    let upgrade = |url: String| async move {
        reqwest::Client::new()
            .get(url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap()
            .status()
    };

    assert_eq!(upgrade(http_url.clone()).await, 101);
    assert_eq!(upgrade(http_url).await, 401, "a used ticket is refused");
}

// ---------------------------------------------------------------------------------------------
// Events mode

#[tokio::test]
async fn the_sender_signs_as_slack_does() {
    let sender = SignedSender::new(fake_slack::SIGNING_SECRET);
    let verifier = SlackEventSignatureVerifier::new(&fake_slack::SIGNING_SECRET.into());
    let body = r#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let signature = sender.sign(ts, body.as_bytes());

    verifier
        .verify(&signature, body, &ts.to_string())
        .expect("slack-morphism accepts the fake's signature");
    assert!(verifier.verify(&signature, "{}", &ts.to_string()).is_err());
    let other = SignedSender::new("another-secret").sign(ts, body.as_bytes());
    assert!(verifier.verify(&other, body, &ts.to_string()).is_err());
    // Slack's documented example, from its request-verification guide.
    let documented = SignedSender::new("8f742231b10e8888abcd99yyyzzz85a5").sign(
        1531420618,
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
    );
    assert_eq!(
        documented,
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    );
}

#[tokio::test]
async fn the_sender_reaches_a_listener_with_signed_headers() {
    use axum::http::HeaderMap;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/slack/commands",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let header = |name: &str| headers[name].to_str().unwrap().to_owned();
                let _ = tx.send((
                    header("x-slack-signature"),
                    header("x-slack-request-timestamp"),
                    header("content-type"),
                    body,
                ));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slack/commands", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sender = SignedSender::new(fake_slack::SIGNING_SECRET);
    let command = fake_slack::slash_command(
        "http://127.0.0.1:1/response/1",
        ids::MEMBER,
        ids::RANDOM,
        "/cogbox",
        "roll 2d6",
    );

    let (status, _) = sender.post_form(&url, &command).await;

    assert_eq!(status, 200);
    let (signature, ts, content_type, body) = rx.recv().await.unwrap();
    assert_eq!(content_type, "application/x-www-form-urlencoded");
    assert!(
        body.contains("command=%2Fcogbox") && body.contains("text=roll+2d6"),
        "{body}"
    );
    let verifier = SlackEventSignatureVerifier::new(&fake_slack::SIGNING_SECRET.into());
    verifier.verify(&signature, &body, &ts).unwrap();
    let parsed: SlackCommandEvent = serde_urlencoded_like(&body);
    assert_eq!(parsed.text.as_deref(), Some("roll 2d6"));
}

/// Reads a form body into slack-morphism's model by way of JSON, as its axum extractor does.
fn serde_urlencoded_like<T: serde::de::DeserializeOwned>(body: &str) -> T {
    let pairs: serde_json::Map<String, Value> = fake_slack::form_urlencoded(body.as_bytes())
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    serde_json::from_value(Value::Object(pairs)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// cogbox's own pieces against the fake

#[tokio::test]
async fn cogbox_blocks_parse_in_slack_morphism_and_pass_the_fakes_block_kit_checks() {
    use cogbox::adapters::slack::render::render;
    use cogbox::core::Reply;
    let fake = start().await;
    let client = client(&fake);
    let token = bot_token();
    let session = client.open_session(&token);
    let mut big = Reply::text("<!channel> & <@U0OWNER01>".repeat(300)).title("T".repeat(300));
    for i in 0..40 {
        big = big.field(format!("<f{i}>"), "&".repeat(3000));
    }
    for i in 0..30 {
        big = big.button("L".repeat(90), format!("/b{i}"));
    }
    let small = Reply::text("Heads")
        .title("Coin")
        .field("flips", "1")
        .button("Again", "/coinflip");

    for reply in [small, big] {
        let rendered = render(&reply);
        let blocks: Vec<SlackBlock> =
            serde_json::from_value(Value::Array(rendered.blocks.clone().unwrap()))
                .expect("slack-morphism reads the blocks");
        let content = SlackMessageContent::new()
            .with_text(rendered.text)
            .with_blocks(blocks);
        session
            .chat_post_message(&SlackApiChatPostMessageRequest::new(
                ids::RANDOM.into(),
                content,
            ))
            .await
            .expect("the fake accepts cogbox's blocks");
    }
    let posted = fake.messages(ids::RANDOM);
    assert_eq!(posted.len(), 2);
    assert!(!posted[1].to_string().contains("<!channel>"));
}

#[test]
fn the_manifest_asks_for_every_scope_the_fake_checks() {
    let manifest = cogbox::adapters::slack::manifest::BOT_SCOPES;
    for scope in fake_slack::ALL_SCOPES {
        assert!(manifest.contains(scope), "the manifest lacks {scope}");
    }
}
