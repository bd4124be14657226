//! The queue's layout in Redis and the Lua scripts that change it atomically.
//!
//! A queue named `NAME` is four keys, all with the hash tag `{NAME}` so that they live on one
//! node of a cluster:
//!
//! | key                    | type   | what it holds |
//! |------------------------|--------|---------------|
//! | `conveyor:{NAME}:items`| stream | one entry per item not yet done, field `d` = the encoded item; consumer group `conveyor` |
//! | `conveyor:{NAME}:meta` | hash   | `maxsize` (0 = unbounded), `state` (`open`, `shutdown`, `immediate`), `token` (this incarnation of the queue) |
//! | `conveyor:{NAME}:dead` | stream | dead letters: field `d`, the original `id`, `deliveries` |
//! | `conveyor:{NAME}:puts` | hash   | per producer lane, the last put's sequence number and count (makes a put retried after a reconnect apply once) |
//!
//! Invariants the scripts keep: an entry leaves `items` only when it is acknowledged (XACK then
//! XDEL in one script), so the group's pending list is a subset of the stream, `XLEN` counts
//! what is not yet done, and `XLEN - pending` counts what is not yet delivered.

use redis::Script;

/// The consumer group every handle reads through.
pub(crate) const GROUP: &str = "conveyor";

/// The key names of one queue.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub items: String,
    pub meta: String,
    pub dead: String,
    pub puts: String,
}

impl Keys {
    pub fn new(name: &str) -> Self {
        let base = format!("conveyor:{{{name}}}");
        Keys {
            items: format!("{base}:items"),
            meta: format!("{base}:meta"),
            dead: format!("{base}:dead"),
            puts: format!("{base}:puts"),
        }
    }
}

/// Creates the queue if it is new, and answers `{maxsize, state, token}`.
///
/// KEYS: items, meta. ARGV: maxsize to create with, token to create with.
const INIT: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'maxsize', ARGV[1], 'state', 'open', 'token', ARGV[2])
end
-- the group (and the stream) exist from here on; BUSYGROUP means it already did
redis.pcall('XGROUP', 'CREATE', KEYS[1], 'conveyor', '0', 'MKSTREAM')
return redis.call('HMGET', KEYS[2], 'maxsize', 'state', 'token')
"#;

/// Puts a batch of items, as many as the bound leaves room for, once per (lane, sequence).
///
/// KEYS: items, meta, puts. ARGV: token, lane, sequence, then the encoded items.
/// Answers `{'ok', n}` (n items put, from the first), `{'closed'}` or `{'lost'}`.
const PUT: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'maxsize', 'token')
if st[3] ~= ARGV[1] then return {'lost'} end
local last = redis.call('HGET', KEYS[3], ARGV[2])
if last then
  local seq, n = string.match(last, '^(%d+) (%d+)$')
  if seq == ARGV[3] then return {'ok', tonumber(n)} end
end
if st[1] ~= 'open' then return {'closed'} end
local n = #ARGV - 3
local cap = tonumber(st[2])
if cap > 0 then
  local pending = redis.call('XPENDING', KEYS[1], 'conveyor')[1]
  local room = cap - (redis.call('XLEN', KEYS[1]) - pending)
  if room < n then n = math.max(room, 0) end
end
for i = 1, n do
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[3 + i])
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] .. ' ' .. n)
return {'ok', n}
"#;

/// Takes one item without blocking: first one that a consumer left unacknowledged for longer
/// than the visibility timeout (moving it to the dead letters if it was delivered too often),
/// else the next undelivered one.
///
/// KEYS: items, meta, dead. ARGV: token, consumer, visibility ms, max deliveries, ack (1/0).
/// Answers `{'item', id, data}`, `{'empty'}`, `{'closed'}` or `{'lost'}`.
const TAKE: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'token')
if st[2] ~= ARGV[1] then return {'lost'} end
if st[1] == 'immediate' then return {'closed'} end
local function field(e, name)
  for i = 1, #e[2], 2 do
    if e[2][i] == name then return e[2][i + 1] end
  end
  return ''
end
local entry
while true do
  local r = redis.call('XAUTOCLAIM', KEYS[1], 'conveyor', ARGV[2], ARGV[3], '0-0', 'COUNT', 1)
  local e = r[2][1]
  if not e then break end
  local p = redis.call('XPENDING', KEYS[1], 'conveyor', e[1], e[1], 1)[1]
  if p[4] > tonumber(ARGV[4]) then
    redis.call('XADD', KEYS[3], '*', 'd', field(e, 'd'), 'id', e[1], 'deliveries', p[4] - 1)
    redis.call('XACK', KEYS[1], 'conveyor', e[1])
    redis.call('XDEL', KEYS[1], e[1])
  else
    entry = e
    break
  end
end
if not entry then
  local r = redis.call('XREADGROUP', 'GROUP', 'conveyor', ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  if r then entry = r[1][2][1] end
end
if not entry then
  if st[1] == 'shutdown' then return {'closed'} end
  return {'empty'}
end
if ARGV[5] == '1' then
  redis.call('XACK', KEYS[1], 'conveyor', entry[1])
  redis.call('XDEL', KEYS[1], entry[1])
end
return {'item', entry[1], field(entry, 'd')}
"#;

/// Acknowledges delivered entries and removes them.
///
/// KEYS: items. ARGV: the entry ids. Answers how many were still pending.
const ACK: &str = r#"
local n = 0
for i = 1, #ARGV do
  n = n + redis.call('XACK', KEYS[1], 'conveyor', ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return n
"#;

/// Shuts the queue down for everyone; with `immediate`, discards what is not yet delivered.
///
/// KEYS: items, meta. ARGV: token, immediate (1/0). Answers how many items were discarded,
/// or -1 if the queue is gone.
const SHUTDOWN: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'token')
if st[2] ~= ARGV[1] then return -1 end
if ARGV[2] ~= '1' then
  if st[1] == 'open' then redis.call('HSET', KEYS[2], 'state', 'shutdown') end
  return 0
end
redis.call('HSET', KEYS[2], 'state', 'immediate')
local n = 0
while true do
  local r = redis.call('XREADGROUP', 'GROUP', 'conveyor', 'conveyor-shutdown', 'COUNT', 500, 'STREAMS', KEYS[1], '>')
  if not r then break end
  for _, e in ipairs(r[1][2]) do
    redis.call('XACK', KEYS[1], 'conveyor', e[1])
    redis.call('XDEL', KEYS[1], e[1])
    n = n + 1
  end
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'conveyor', 'conveyor-shutdown')
return n
"#;

/// Answers `{not done (XLEN), pending, state}`, or `{'lost'}`.
///
/// KEYS: items, meta. ARGV: token.
const COUNTS: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'token')
if st[2] ~= ARGV[1] then return {'lost'} end
local pending = redis.call('XPENDING', KEYS[1], 'conveyor')[1]
return {redis.call('XLEN', KEYS[1]), pending, st[1]}
"#;

/// Forgets a handle when it goes: its producer lanes, and its consumer if it holds nothing.
///
/// KEYS: items, puts. ARGV: consumer, then the lane names.
const RETIRE: &str = r#"
for i = 2, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ok, held = pcall(redis.call, 'XPENDING', KEYS[1], 'conveyor', '-', '+', 1, ARGV[1])
if ok and #held == 0 then
  redis.pcall('XGROUP', 'DELCONSUMER', KEYS[1], 'conveyor', ARGV[1])
  return 1
end
return 0
"#;

/// Every script, compiled once per process.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub init: Script,
    pub put: Script,
    pub take: Script,
    pub ack: Script,
    pub shutdown: Script,
    pub counts: Script,
    pub retire: Script,
}

/// The scripts (redis-rs sends each by its SHA1 and loads it on NOSCRIPT, so a server that
/// restarted or flushed its scripts gets them again).
pub(crate) fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        init: Script::new(INIT),
        put: Script::new(PUT),
        take: Script::new(TAKE),
        ack: Script::new(ACK),
        shutdown: Script::new(SHUTDOWN),
        counts: Script::new(COUNTS),
        retire: Script::new(RETIRE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let k = Keys::new("jobs");
        for key in [&k.items, &k.meta, &k.dead, &k.puts] {
            assert!(key.starts_with("conveyor:{jobs}:"), "{key}");
        }
    }
}
