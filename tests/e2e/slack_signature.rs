//! The Slack request verifier as the events endpoint uses it: its size cap and its signatures,
//! on requests the size real Slack events have (the unit tests use Slack's short worked example).

use cogbox::adapters::slack::signature::{MAX_BODY, Rejection, Verifier};
use ring::hmac;

const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const NOW: u64 = 1_700_000_000;

/// What Slack sends: `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
fn slack_signs(body: &[u8], timestamp: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    let tag = hmac::sign(&key, &message);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

fn verify(body: &[u8]) -> Result<(), Rejection> {
    let verifier = Verifier::new(&SECRET.into());
    let signature = slack_signs(body, NOW);
    Verifier::check_length(Some(body.len() as u64))?;
    verifier.verify(Some(&NOW.to_string()), Some(&signature), body, NOW)
}

#[test]
fn a_signed_event_with_a_few_kilobytes_of_blocks_is_accepted() {
    // An app_mention with rich-text blocks and attachments is easily 2 to 8 KB.
    let text = "a".repeat(6 * 1024);
    let body = format!(
        r#"{{"type":"event_callback","team_id":"T1","event":{{"type":"app_mention","user":"U1","text":"{text}","channel":"C1"}}}}"#
    );
    assert!(body.len() > 6 * 1024);
    assert_eq!(verify(body.as_bytes()), Ok(()));
}

#[test]
fn the_size_cap_refuses_only_what_is_over_it() {
    let at_cap = vec![b'x'; MAX_BODY];
    assert_eq!(
        verify(&at_cap),
        Ok(()),
        "a body of exactly the cap is accepted"
    );
    let over = vec![b'x'; MAX_BODY + 1];
    assert_eq!(verify(&over), Err(Rejection::TooLarge));
    assert_eq!(
        Verifier::check_length(Some(MAX_BODY as u64)),
        Ok(()),
        "a declared length of exactly the cap is read, as verify would accept it"
    );
}
