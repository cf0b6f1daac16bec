//! Events-mode requests are Slack's only if they carry `X-Slack-Signature` =
//! `v0=HMAC-SHA256(signing_secret, "v0:{timestamp}:{body}")` and a
//! `X-Slack-Request-Timestamp` within five minutes of now (so a captured request cannot be
//! replayed). Everything is checked before any handler sees the body.

use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Slack's events and commands are a few kilobytes; a body near this is not from Slack.
pub const MAX_BODY: usize = 256 * 1024;
/// How far a request's timestamp may be from now, either way: Slack's own advice.
pub const MAX_SKEW_SECS: u64 = 5 * 60;

/// Why a request was refused, and the status it is answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// No signature or timestamp header: 401.
    Unsigned,
    /// A timestamp that is not a number: 400.
    Malformed,
    /// Signed more than five minutes from now: 401.
    Stale,
    /// The signature does not match the body: 401.
    Forged,
    /// Over [`MAX_BODY`]: 413.
    TooLarge,
}

impl Rejection {
    pub fn status(self) -> u16 {
        match self {
            Self::Malformed => 400,
            Self::Unsigned | Self::Stale | Self::Forged => 401,
            Self::TooLarge => 413,
        }
    }
}

/// Verifies requests with one app's signing secret.
pub struct Verifier {
    key: hmac::Key,
}

impl Verifier {
    pub fn new(signing_secret: &SecretString) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, signing_secret.expose_secret().as_bytes()),
        }
    }

    /// A declared `Content-Length` over the cap is refused before the body is read.
    pub fn check_length(declared: Option<u64>) -> Result<(), Rejection> {
        match declared {
            Some(len) if len > MAX_BODY as u64 => Err(Rejection::TooLarge),
            _ => Ok(()),
        }
    }

    /// Checks one request; `now` is unix seconds from the app's clock.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<(), Rejection> {
        if body.len() > MAX_BODY {
            return Err(Rejection::TooLarge);
        }
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(Rejection::Unsigned);
        };
        let signed_at: u64 = timestamp.trim().parse().map_err(|_| Rejection::Malformed)?;
        if signed_at.abs_diff(now) > MAX_SKEW_SECS {
            return Err(Rejection::Stale);
        }
        let tag = signature
            .strip_prefix("v0=")
            .and_then(decode_hex)
            .ok_or(Rejection::Forged)?;
        let mut message = format!("v0:{timestamp}:").into_bytes();
        message.extend_from_slice(body);
        // ring compares in constant time.
        hmac::verify(&self.key, &message, &tag).map_err(|_| Rejection::Forged)
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's worked example from its request-verification guide.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: u64 = 1531420618;
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    fn verifier() -> Verifier {
        Verifier::new(&SECRET.into())
    }

    fn check(
        ts: Option<&str>,
        signature: Option<&str>,
        body: &str,
        now: u64,
    ) -> Result<(), Rejection> {
        verifier().verify(ts, signature, body.as_bytes(), now)
    }

    #[test]
    fn slacks_documented_example_verifies() {
        let ts = TS.to_string();
        assert_eq!(check(Some(&ts), Some(SIGNATURE), BODY, TS + 10), Ok(()));
    }

    #[test]
    fn a_changed_body_secret_or_signature_is_forged() {
        let ts = TS.to_string();
        let tampered = BODY.replace("text=", "text=kick");
        assert_eq!(
            check(Some(&ts), Some(SIGNATURE), &tampered, TS),
            Err(Rejection::Forged)
        );
        let other = Verifier::new(&"another-secret".into());
        assert_eq!(
            other.verify(Some(&ts), Some(SIGNATURE), BODY.as_bytes(), TS),
            Err(Rejection::Forged)
        );
        let mut flipped = SIGNATURE.to_owned();
        flipped.replace_range(66.., "4");
        for bad in [
            &flipped[..],
            "v1=a2114d57",
            "v0=zz",
            "v0=",
            "a2114d57b48e",
            "v0=é1",
        ] {
            assert_eq!(
                check(Some(&ts), Some(bad), BODY, TS),
                Err(Rejection::Forged),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_timestamp_is_signed_too_so_a_replay_cannot_refresh_it() {
        let later = (TS + 60).to_string();
        assert_eq!(
            check(Some(&later), Some(SIGNATURE), BODY, TS + 60),
            Err(Rejection::Forged)
        );
    }

    #[test]
    fn only_five_minutes_either_way_are_accepted() {
        let ts = TS.to_string();
        assert_eq!(check(Some(&ts), Some(SIGNATURE), BODY, TS + 300), Ok(()));
        assert_eq!(
            check(Some(&ts), Some(SIGNATURE), BODY, TS + 301),
            Err(Rejection::Stale)
        );
        assert_eq!(
            check(Some(&ts), Some(SIGNATURE), BODY, TS - 301),
            Err(Rejection::Stale)
        );
        assert_eq!(Rejection::Stale.status(), 401);
    }

    #[test]
    fn missing_or_malformed_headers_and_big_bodies_are_refused_with_their_status() {
        let ts = TS.to_string();
        assert_eq!(
            check(None, Some(SIGNATURE), BODY, TS),
            Err(Rejection::Unsigned)
        );
        assert_eq!(check(Some(&ts), None, BODY, TS), Err(Rejection::Unsigned));
        assert_eq!(
            check(Some("yesterday"), Some(SIGNATURE), BODY, TS),
            Err(Rejection::Malformed)
        );
        assert_eq!(
            check(Some("-5"), Some(SIGNATURE), BODY, TS),
            Err(Rejection::Malformed)
        );
        assert_eq!(Rejection::Malformed.status(), 400);
        let big = "x".repeat(MAX_BODY + 1);
        assert_eq!(
            check(Some(&ts), Some(SIGNATURE), &big, TS),
            Err(Rejection::TooLarge)
        );
        assert_eq!(
            Verifier::check_length(Some(MAX_BODY as u64 + 1)),
            Err(Rejection::TooLarge)
        );
        assert_eq!(Verifier::check_length(Some(10)), Ok(()));
        assert_eq!(Rejection::TooLarge.status(), 413);
    }

    // Requests the size real Slack events have (the worked example above is short).
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
}
