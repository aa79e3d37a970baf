//! The answer cache for forwarded questions.
//!
//! Entries are keyed by (lower-case name, type, class), so they are independent of the query
//! id and of the asker's letter case. Positive answers live for the smallest TTL in the answer
//! section; negative answers (NXDOMAIN, NODATA) for min(SOA TTL, SOA minimum) per RFC 2308 and
//! are not cached at all without an SOA. SERVFAIL and other errors are never cached. TTLs are
//! capped by `max_ttl`, and served TTLs count down with the entry's age.
//!
//! Size is bounded: the cache is split into shards, each a `Mutex<HashMap>` (held only for a
//! map operation, never across an await). A full shard first drops expired entries, then an
//! arbitrary eighth of itself (HashMap order is randomised, so this is random eviction: cheaper
//! than LRU bookkeeping on every hit, and good enough for a container resolver).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record};

const SHARDS: usize = 16;

/// Cache key: lower-case fully-qualified name, record type and class as numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// A stored upstream answer, without header or question.
#[derive(Debug)]
pub(crate) struct CachedAnswer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    stored: Instant,
    expires: Instant,
}

impl CachedAnswer {
    /// Wraps an upstream reply; `ttl` 0 means "do not keep" (the value is still usable once).
    pub fn from_message(msg: Message, ttl: u32, now: Instant) -> Self {
        Self {
            rcode: msg.metadata.response_code,
            answers: msg.answers,
            authorities: msg.authorities,
            additionals: msg.additionals,
            stored: now,
            expires: now + Duration::from_secs(ttl.into()),
        }
    }

    /// Seconds since the answer was stored, to subtract from every TTL when serving it.
    pub fn age_secs(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.stored)
            .as_secs()
            .min(u32::MAX as u64) as u32
    }

    fn expired(&self, now: Instant) -> bool {
        now >= self.expires
    }
}

/// RFC 2308 §3: the SOA in a negative answer is served with TTL min(SOA TTL, SOA minimum).
pub(crate) fn clamp_negative_soa(msg: &mut Message) {
    if !msg.answers.is_empty() {
        return;
    }
    for r in &mut msg.authorities {
        if let RData::SOA(soa) = &r.data {
            r.ttl = r.ttl.min(soa.minimum);
        }
    }
}

/// How long an upstream reply may be cached, or `None` if it must not be.
pub(crate) fn cache_ttl(msg: &Message, max_ttl: u32) -> Option<u32> {
    let rcode = msg.metadata.response_code;
    let ttl = match rcode {
        ResponseCode::NoError if !msg.answers.is_empty() => {
            msg.answers.iter().map(|r| r.ttl).min()?
        }
        ResponseCode::NoError | ResponseCode::NXDomain => msg
            .authorities
            .iter()
            .filter_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
            .min()?,
        _ => return None,
    };
    let ttl = ttl.min(max_ttl);
    (ttl > 0).then_some(ttl)
}

/// A bounded, sharded TTL cache.
#[derive(Debug)]
pub(crate) struct Cache {
    shards: Vec<Mutex<HashMap<CacheKey, Arc<CachedAnswer>>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl Cache {
    /// A cache holding at most about `capacity` entries (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &CacheKey) -> &Mutex<HashMap<CacheKey, Arc<CachedAnswer>>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// A live entry, if any (expired entries are removed on the way).
    pub fn get(&self, key: &CacheKey, now: Instant) -> Option<Arc<CachedAnswer>> {
        let mut map = lock(self.shard(key));
        match map.get(key) {
            Some(v) if !v.expired(now) => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores an entry, evicting if the shard is full.
    pub fn insert(&self, key: CacheKey, value: Arc<CachedAnswer>, now: Instant) {
        if self.per_shard == 0 {
            return;
        }
        let mut map = lock(self.shard(&key));
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            map.retain(|_, v| !v.expired(now));
            if map.len() >= self.per_shard {
                let drop_n = (self.per_shard / 8).max(1);
                let victims: Vec<CacheKey> = map.keys().take(drop_n).cloned().collect();
                for k in victims {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, value);
    }

    /// Number of entries (including not yet collected expired ones).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Drops everything.
    pub fn clear(&self) {
        for s in &self.shards {
            lock(s).clear();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a shard cannot leave a HashMap logically broken for us.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::Name;

    fn msg(rcode: ResponseCode) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        let n = Name::from_ascii("example.").unwrap();
        Record::from_rdata(
            n.clone(),
            ttl,
            RData::SOA(SOA::new(n.clone(), n, 1, 2, 3, 4, minimum)),
        )
    }

    #[test]
    fn ttl_rules() {
        let name = Name::from_ascii("a.example.").unwrap();
        let mut m = msg(ResponseCode::NoError);
        m.answers.push(Record::from_rdata(
            name.clone(),
            300,
            RData::A(A::new(1, 2, 3, 4)),
        ));
        m.answers
            .push(Record::from_rdata(name, 60, RData::A(A::new(1, 2, 3, 5))));
        assert_eq!(cache_ttl(&m, 3600), Some(60));
        assert_eq!(cache_ttl(&m, 30), Some(30));

        let mut nx = msg(ResponseCode::NXDomain);
        assert_eq!(cache_ttl(&nx, 3600), None, "no SOA, no negative caching");
        nx.authorities.push(soa(900, 120));
        assert_eq!(cache_ttl(&nx, 3600), Some(120));
        let mut nodata = msg(ResponseCode::NoError);
        nodata.authorities.push(soa(50, 120));
        assert_eq!(cache_ttl(&nodata, 3600), Some(50));

        let mut sf = msg(ResponseCode::ServFail);
        sf.authorities.push(soa(50, 120));
        assert_eq!(cache_ttl(&sf, 3600), None);
    }

    #[test]
    fn bounded_and_expiring() {
        let cache = Cache::new(64);
        let now = Instant::now();
        for i in 0..1000 {
            let key = CacheKey {
                name: format!("n{i}."),
                qtype: 1,
                qclass: 1,
            };
            let v = CachedAnswer::from_message(msg(ResponseCode::NoError), 10, now);
            cache.insert(key, Arc::new(v), now);
        }
        assert!(cache.len() <= 64 + SHARDS, "len {}", cache.len());
        let key = CacheKey {
            name: "x.".into(),
            qtype: 1,
            qclass: 1,
        };
        let v = CachedAnswer::from_message(msg(ResponseCode::NoError), 10, now);
        cache.insert(key.clone(), Arc::new(v), now);
        assert!(cache.get(&key, now + Duration::from_secs(9)).is_some());
        assert!(cache.get(&key, now + Duration::from_secs(10)).is_none());
    }
}
