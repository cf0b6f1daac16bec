//! Finding a member by a typed `@name`. Without the presences intent, GUILD_CREATE carries only
//! the bot, so the cache cannot answer; the gateway's member search can (REQUEST_GUILD_MEMBERS
//! with a query, op 8, answered by GUILD_MEMBERS_CHUNK), which is what discord.py's member
//! converter uses too. Among what the search finds, only an exact name counts, and a name that
//! fits more than one member is refused with the candidates listed: never a guess.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serenity::all::{GuildId, GuildMembersChunkEvent, Member as DMember, ShardMessenger};
use serenity::gateway::ChunkGuildFilter;
use tokio::sync::oneshot;

use crate::core::PlatformError;

/// Members one search returns: Discord's maximum for a query.
const LIMIT: u16 = 100;
/// How long Discord may take to answer; it usually takes milliseconds.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Searches waiting at once. Worst case: 64 × up to 100 members of a few hundred bytes each,
/// about 2 MB, and only while answers are on their way.
const MAX_PENDING: usize = 64;

/// Searches on their way, matched to their answers by nonce.
#[derive(Default)]
pub struct MemberSearch {
    pending: Mutex<HashMap<String, Pending>>,
    next: AtomicU64,
}

struct Pending {
    found: Vec<DMember>,
    done: oneshot::Sender<Vec<DMember>>,
}

impl MemberSearch {
    /// The members whose username or nickname starts with `name`, as Discord finds them.
    pub async fn query(
        &self,
        shard: &ShardMessenger,
        guild: GuildId,
        name: &str,
    ) -> Result<Vec<DMember>, PlatformError> {
        let nonce = format!("cogbox-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let (done, answer) = oneshot::channel();
        {
            let mut pending = self.lock();
            if pending.len() >= MAX_PENDING {
                return Err(PlatformError::Failed(
                    "discord: too many member searches at once".into(),
                ));
            }
            let found = Vec::new();
            pending.insert(nonce.clone(), Pending { found, done });
        }
        let filter = ChunkGuildFilter::Query(name.to_owned());
        shard.chunk_guild(guild, Some(LIMIT), false, filter, Some(nonce.clone()));
        match tokio::time::timeout(TIMEOUT, answer).await {
            Ok(Ok(found)) => Ok(found),
            _ => {
                self.lock().remove(&nonce);
                Err(PlatformError::Failed(
                    format!(
                        "discord: no answer to the member search for @{name} within {TIMEOUT:?}"
                    )
                    .into(),
                ))
            }
        }
    }

    /// Hands a GUILD_MEMBERS_CHUNK to the search that asked for it, once all its chunks are in.
    pub fn chunk(&self, chunk: GuildMembersChunkEvent) {
        let Some(nonce) = chunk.nonce else { return };
        let mut pending = self.lock();
        let Some(search) = pending.get_mut(&nonce) else {
            return;
        };
        search.found.extend(chunk.members.into_values());
        if chunk.chunk_index + 1 >= chunk.chunk_count {
            if let Some(search) = pending.remove(&nonce) {
                let _ = search.done.send(search.found);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Who `@name` means among the members found: those whose username, display name or nickname
/// is `name` (ignoring case), where a prefix match is no match. `Err` lists the candidates when
/// there is more than one, as a nickname can be set to someone else's username.
pub fn pick<'a>(found: &'a [DMember], name: &str) -> Result<Option<&'a DMember>, String> {
    let is = |text: Option<&str>| text.is_some_and(|t| t.eq_ignore_ascii_case(name));
    let mut matches: Vec<&DMember> = found
        .iter()
        .filter(|m| {
            is(Some(&m.user.name)) || is(m.user.global_name.as_deref()) || is(m.nick.as_deref())
        })
        .collect();
    matches.sort_by_key(|m| m.user.id);
    matches.dedup_by_key(|m| m.user.id);
    match matches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        several => {
            let candidates: Vec<String> = several
                .iter()
                .map(|m| {
                    if m.user.name.eq_ignore_ascii_case(name) {
                        format!("@{} (username)", m.user.name)
                    } else if is(m.nick.as_deref()) {
                        format!("@{} (nickname {name})", m.user.name)
                    } else {
                        format!("@{} (display name {name})", m.user.name)
                    }
                })
                .collect();
            Err(format!(
                "@{name} could be {}: mention them or give their id",
                candidates.join(" or ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serenity::all::UserId;

    use super::*;

    fn member(id: u64, username: &str, nick: Option<&str>) -> DMember {
        let mut member = DMember::default();
        member.user.id = UserId::new(id);
        member.user.name = username.into();
        member.nick = nick.map(Into::into);
        member
    }

    #[test]
    fn an_exact_name_is_needed_and_two_matches_are_refused() {
        let found = [
            member(1, "alice", None),
            member(2, "alicia", None),
            member(3, "mallory", Some("Alice2")),
        ];
        assert_eq!(
            pick(&found, "ALICE").unwrap().map(|m| m.user.id.get()),
            Some(1)
        );
        assert!(
            pick(&found, "ali").unwrap().is_none(),
            "a prefix is no match"
        );
        assert_eq!(
            pick(&found, "alice2").unwrap().map(|m| m.user.id.get()),
            Some(3)
        );
        let impostor = [
            member(1, "alice", None),
            member(3, "mallory", Some("alice")),
        ];
        assert_eq!(
            pick(&impostor, "alice").unwrap_err(),
            "@alice could be @alice (username) or @mallory (nickname alice): \
             mention them or give their id"
        );
        let twice = [member(1, "alice", Some("alice")), member(1, "alice", None)];
        assert!(
            pick(&twice, "alice").unwrap().is_some(),
            "one member, two chunks"
        );
    }

    #[tokio::test]
    async fn a_chunk_reaches_only_the_search_that_asked() {
        let search = MemberSearch::default();
        let (done, answer) = oneshot::channel();
        search.lock().insert(
            "n".into(),
            Pending {
                found: Vec::new(),
                done,
            },
        );
        let chunk = |nonce: Option<&str>, index, count| {
            let mut event: GuildMembersChunkEvent = serde_json::from_value(serde_json::json!({
                "guild_id": "1", "members": [], "chunk_index": index, "chunk_count": count
            }))
            .unwrap();
            event.nonce = nonce.map(Into::into);
            event
        };
        search.chunk(chunk(None, 0, 1));
        search.chunk(chunk(Some("other"), 0, 1));
        search.chunk(chunk(Some("n"), 0, 2));
        assert_eq!(search.lock().len(), 1, "waits for the last chunk");
        search.chunk(chunk(Some("n"), 1, 2));
        assert!(search.lock().is_empty());
        assert!(answer.await.is_ok());
    }
}
