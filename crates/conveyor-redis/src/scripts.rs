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
//! | `conveyor:{NAME}:puts-at-shutdown` | hash | `puts` as it was when the queue was shut down (renamed then): what a put retried after the shutdown looks up |
//! | `conveyor:{NAME}:producers` | hash | on a queue that shuts itself down: per producer handle that has put and not closed, when its lease ends (server ms) |
//!
//! `meta` also holds `auto` (`1`: the queue shuts itself down once its producers are done) and
//! `had` (`1`: some handle has put).
//!
//! What counts: the group's `lag` (`XINFO GROUPS`) is the number of entries not yet delivered,
//! its `pending` the number delivered and not yet acknowledged; a queue's `len` is the first,
//! `join` waits until both are 0 (the `counts` procedure below). An acknowledged entry is no
//! longer needed: `task_done`, the dead letters and `shutdown(immediate)` remove theirs at once
//! (XDEL), a get of a [`RedisQueue`](crate::RedisQueue) reads with `NOACK` (the entry is done as
//! it is delivered, never pending; an XDEL each would cost the server more than the read), and
//! the take script, once per poll interval and consumer,
//! trims the stream below the oldest entry still pending or not yet delivered (`XTRIM MINID`).
//! An entry is only ever deleted once delivered, so the group's lag stays known; if a peer
//! deletes an undelivered one, `counts` counts the entries after the last delivered id instead.
//!
//! # Shutdown that Redis enforces itself
//!
//! Shutting a queue down (the `shut` procedure below, run by every script that moves `state`
//! from `open`) also sets the stream's last id to the largest one there is (`XSETID`), so that
//! every later `XADD` to it fails in the server ("the stream has exhausted the last possible
//! ID"): a put that does not run a script (the fast put, [`fast_put`], and a redis-py peer's
//! `xadd`) cannot go in after a shutdown, with no state read of its own. Gets are not affected
//! (they read entries below that id). In the same step `puts` is renamed to
//! `puts-at-shutdown`, so that a put retried after a broken connection can still tell whether
//! it went in before the shutdown (its lane's record is there) or was refused after it (a fast
//! put's record, written in the same transaction as its failed `XADD`, lands in a new `puts`).

use redis::{Cmd, ConnectionLike, FromRedisValue, RedisResult, Script, ToRedisArgs};

/// The consumer group every handle reads through.
pub(crate) const GROUP: &str = "conveyor";

/// The key names of one queue.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub items: String,
    pub meta: String,
    pub dead: String,
    pub puts: String,
    pub puts_at_shutdown: String,
    pub producers: String,
}

impl Keys {
    pub fn new(name: &str) -> Self {
        let base = format!("conveyor:{{{name}}}");
        Keys {
            items: format!("{base}:items"),
            meta: format!("{base}:meta"),
            dead: format!("{base}:dead"),
            puts: format!("{base}:puts"),
            puts_at_shutdown: format!("{base}:puts-at-shutdown"),
            producers: format!("{base}:producers"),
        }
    }
}

/// Creates the queue if it is new, and answers `{maxsize, state, token}`.
///
/// KEYS: items, meta. ARGV: maxsize to create with, token to create with, auto (1/0).
/// Answers `{maxsize, state, token, auto}`.
const INIT: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'maxsize', ARGV[1], 'state', 'open', 'token', ARGV[2], 'auto', ARGV[3])
end
-- the group (and the stream) exist from here on; BUSYGROUP means it already did
redis.pcall('XGROUP', 'CREATE', KEYS[1], 'conveyor', '0', 'MKSTREAM')
return redis.call('HMGET', KEYS[2], 'maxsize', 'state', 'token', 'auto')
"#;

/// Puts a batch of items, as many as the bound leaves room for, once per (lane, sequence).
///
/// KEYS: items, meta, puts, producers, puts-at-shutdown. ARGV: token, lane, sequence, producer,
/// lease ms, `retry` when this (lane, sequence) may have been applied already (only then is the
/// last one looked up: in `puts` while the queue is open, else in the record frozen at the
/// shutdown), then the encoded items. Answers `{'ok', n}` (n items put, from the first),
/// `{'closed'}` or `{'lost'}`.
const PUT: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'maxsize', 'token', 'auto', 'had')
if st[3] ~= ARGV[1] then
  -- a fast put's transaction on a server that lost the queue leaves a stray record behind
  if not st[3] and redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[3]) end
  return {'lost'}
end
if ARGV[6] == 'retry' then
  local record = KEYS[3]
  if st[1] ~= 'open' then record = KEYS[5] end
  local last = redis.call('HGET', record, ARGV[2])
  if last then
    local seq, n = string.match(last, '^(%d+) (%d+)$')
    if seq == ARGV[3] then return {'ok', tonumber(n)} end
  end
end
if st[1] ~= 'open' then return {'closed'} end
local n = #ARGV - 6
local cap = tonumber(st[2])
if cap > 0 then
  local room = cap - counts(KEYS[1])
  if room < n then n = math.max(room, 0) end
end
for i = 1, n do
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[6 + i])
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] .. ' ' .. n)
if st[4] == '1' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[4], ARGV[4], t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[5]))
  if st[5] ~= '1' then redis.call('HSET', KEYS[2], 'had', '1') end
end
return {'ok', n}
"#;

/// Takes one item without blocking: first one that a consumer left unacknowledged for longer
/// than the visibility timeout (moving it to the dead letters if it was delivered too often),
/// else the next undelivered one.
///
/// On a queue that shuts itself down, an empty take also forgets producers whose lease ran out
/// (their process died) and shuts the queue down once none is left.
///
/// KEYS: items, meta, dead, producers, puts, puts-at-shutdown. ARGV: token, consumer,
/// visibility ms, max deliveries, ack (1/0). Answers `{'item', id, data}`, `{'empty'}`, `{'closed'}` or `{'lost'}`.
const TAKE: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'token', 'auto', 'had')
if st[2] ~= ARGV[1] then return {'lost'} end
if st[1] == 'immediate' then return {'closed'} end
local function field(e, name)
  for i = 1, #e[2], 2 do
    if e[2][i] == name then return e[2][i + 1] end
  end
  return ''
end
trim(KEYS[1])
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
  if st[3] == '1' and st[4] == '1' then
    local t = redis.call('TIME')
    local now = t[1] * 1000 + math.floor(t[2] / 1000)
    local all = redis.call('HGETALL', KEYS[4])
    for i = 1, #all, 2 do
      if tonumber(all[i + 1]) < now then redis.call('HDEL', KEYS[4], all[i]) end
    end
    if redis.call('HLEN', KEYS[4]) == 0 then
      redis.call('HSET', KEYS[2], 'state', 'shutdown')
      shut(KEYS[1], KEYS[5], KEYS[6])
      return {'closed'}
    end
  end
  return {'empty'}
end
if ARGV[5] == '1' then
  redis.call('XACK', KEYS[1], 'conveyor', entry[1])
end
return {'item', entry[1], field(entry, 'd')}
"#;

/// Acknowledges delivered entries and removes them.
///
/// KEYS: items. ARGV: the entry ids. Answers how many were still pending.
const ACK: &str = r#"
local n = 0
for i = 1, #ARGV do
  redis.call('XDEL', KEYS[1], ARGV[i])
  n = n + redis.call('XACK', KEYS[1], 'conveyor', ARGV[i])
end
return n
"#;

/// Shuts the queue down for everyone; with `immediate`, discards what is not yet delivered.
///
/// KEYS: items, meta, puts, puts-at-shutdown. ARGV: token, immediate (1/0). Answers how many
/// items were discarded, or -1 if the queue is gone.
const SHUTDOWN: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'token')
if st[2] ~= ARGV[1] then return -1 end
if st[1] == 'open' then shut(KEYS[1], KEYS[3], KEYS[4]) end
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

/// Answers `{not done (undelivered + pending), pending, state}`, or `{'lost'}`.
///
/// KEYS: items, meta. ARGV: token.
const COUNTS: &str = r#"
local st = redis.call('HMGET', KEYS[2], 'state', 'token')
if st[2] ~= ARGV[1] then return {'lost'} end
local undelivered, pending = counts(KEYS[1])
return {undelivered + pending, pending, st[1]}
"#;

/// A producer handle closes (or goes): forget it, and shut a self-shutting queue down if it
/// was the last.
///
/// KEYS: meta, producers, items, puts, puts-at-shutdown. ARGV: token, producer. Answers 1 if
/// the queue was shut down.
const LEAVE: &str = r#"
local st = redis.call('HMGET', KEYS[1], 'state', 'token', 'auto', 'had')
if st[2] ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
if st[1] == 'open' and st[3] == '1' and st[4] == '1' and redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'shutdown')
  shut(KEYS[3], KEYS[4], KEYS[5])
  return 1
end
return 0
"#;

/// Extends the leases of live producers that have not closed.
///
/// KEYS: producers. ARGV: lease ms, then the producers.
const LEASE: &str = r#"
local t = redis.call('TIME')
local until_ms = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], until_ms)
  end
end
return 0
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

/// The fast put: the transaction `MULTI; XADD items NOMKSTREAM * d ITEM (per item); HSET puts
/// LANE "SEQ N"; EXEC`, for a queue whose put needs no script (unbounded, not self-shutting).
///
/// It reads no state: a shut-down queue refuses its `XADD`s in the server (see the module
/// docs), and a queue the server lost has no stream, so `NOMKSTREAM` makes its `XADD`s answer
/// nil instead of making a new one. Either way the caller learns why from the put script. The
/// record is written in the same transaction as the entries, as the put script writes it, so a
/// put retried after a broken connection (through the script, with `retry`) is applied once.
pub(crate) fn fast_put(keys: &Keys, lane: &str, seq: u64, items: &[Vec<u8>]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic().ignore_errors();
    for item in items {
        pipe.cmd("XADD")
            .arg(&keys.items)
            .arg("NOMKSTREAM")
            .arg("*")
            .arg("d")
            .arg(item.as_slice());
    }
    pipe.cmd("HSET")
        .arg(&keys.puts)
        .arg(lane)
        .arg(format!("{seq} {}", items.len()))
        .ignore();
    pipe
}

/// The procedure that shuts a queue down for puts, prepended to the scripts that do it (see
/// the module docs): the stream takes no more `XADD`s, and the put records are frozen.
///
/// Arguments: items, puts, puts-at-shutdown.
const SHUT: &str = r#"
local function shut(items, puts, frozen)
  if redis.call('EXISTS', items) == 1 then
    redis.call('XSETID', items, '18446744073709551615-18446744073709551615')
  end
  if redis.call('EXISTS', puts) == 1 then redis.call('RENAME', puts, frozen) end
end
"#;

/// The procedures that count a queue and trim its stream, prepended to the scripts that use
/// them (see the module docs).
///
/// `counts(items)` answers the entries not yet delivered, those pending, and the group's last
/// delivered id. `trim(items)` removes the entries below the oldest one still pending, or below
/// the last delivered one if none is (the last delivered entry itself stays until the next
/// trim: `XTRIM MINID` keeps the id it is given).
const COUNT_AND_TRIM: &str = r#"
local function counts(items)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', items)) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == 'conveyor' then
      local lag = f['lag']
      if not lag then
        lag = #redis.call('XRANGE', items, '(' .. f['last-delivered-id'], '+')
      end
      return lag, f['pending'], f['last-delivered-id']
    end
  end
  return 0, 0, '0-0'
end
local function trim(items)
  local _, pending, last = counts(items)
  local floor = last
  if pending > 0 then floor = redis.call('XPENDING', items, 'conveyor')[2] end
  redis.call('XTRIM', items, 'MINID', floor)
end
"#;

/// A Lua script, sent by its SHA1 (`EVALSHA`), and in full (`EVAL`, which also leaves it in
/// the server's script cache) where the server does not know it (`NOSCRIPT`: a server that is
/// new to it, restarted, or flushed its scripts).
///
/// Not redis-rs's `Script::invoke`, which answers `NOSCRIPT` with `SCRIPT LOAD` and then
/// `EVALSHA`: a cluster connection sends `SCRIPT LOAD` to every primary, so one node down
/// would fail the first script call of every queue on every other node. `EVAL` goes where the
/// script's keys are, as `EVALSHA` does, and takes one round trip instead of two.
#[derive(Debug)]
pub(crate) struct Lua {
    source: String,
    /// The SHA1 of `source` (redis-rs computes it).
    script: Script,
}

impl Lua {
    fn new(source: String) -> Self {
        Lua {
            script: Script::new(&source),
            source,
        }
    }

    /// A call of this script, with `key` as its first key.
    pub fn key<T: ToRedisArgs>(&self, key: T) -> Call<'_> {
        let mut call = Call {
            lua: self,
            keys: Vec::new(),
            args: Vec::new(),
        };
        call.key(key);
        call
    }
}

/// A call of a [`Lua`] script being built: its keys, then its arguments.
pub(crate) struct Call<'a> {
    lua: &'a Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Call<'_> {
    /// Adds a key (`KEYS[n]`).
    pub fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    /// Adds an argument (`ARGV[n]`).
    pub fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// Runs the script: by its SHA1, or in full if the server does not know it.
    pub fn invoke<T: FromRedisValue>(&self, con: &mut dyn ConnectionLike) -> RedisResult<T> {
        match self
            .command("EVALSHA", self.lua.script.get_hash())
            .query(con)
        {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                self.command("EVAL", &self.lua.source).query(con)
            }
            other => other,
        }
    }

    fn command(&self, verb: &str, script: &str) -> Cmd {
        let mut cmd = redis::cmd(verb);
        cmd.arg(script).arg(self.keys.len());
        for key in &self.keys {
            cmd.arg(key.as_slice());
        }
        for arg in &self.args {
            cmd.arg(arg.as_slice());
        }
        cmd
    }
}

/// Every script, compiled once per process.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub init: Lua,
    pub put: Lua,
    pub take: Lua,
    pub ack: Lua,
    pub shutdown: Lua,
    pub counts: Lua,
    pub retire: Lua,
    pub leave: Lua,
    pub lease: Lua,
}

/// The scripts (each sent by its SHA1, and in full on NOSCRIPT, so a server that restarted or
/// flushed its scripts gets them again: see [`Lua`]).
pub(crate) fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        init: Lua::new(INIT.to_string()),
        put: Lua::new(format!("{COUNT_AND_TRIM}{PUT}")),
        take: Lua::new(format!("{SHUT}{COUNT_AND_TRIM}{TAKE}")),
        ack: Lua::new(ACK.to_string()),
        shutdown: Lua::new(format!("{SHUT}{SHUTDOWN}")),
        counts: Lua::new(format!("{COUNT_AND_TRIM}{COUNTS}")),
        retire: Lua::new(RETIRE.to_string()),
        leave: Lua::new(format!("{SHUT}{LEAVE}")),
        lease: Lua::new(LEASE.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use conveyor_core::{Channel, Codec, Postcard};
    use redis::Value;

    use crate::{RedisQueue, Target};

    /// The put script run as a put retried after a broken connection: `(lane, seq)` may have
    /// gone in already.
    fn retried_put(
        conn: &mut redis::Connection,
        keys: &Keys,
        token: &str,
        (lane, seq): (&str, u64),
        item: &[u8],
    ) -> Vec<Value> {
        scripts()
            .put
            .key(&keys.items)
            .key(&keys.meta)
            .key(&keys.puts)
            .key(&keys.producers)
            .key(&keys.puts_at_shutdown)
            .arg(token)
            .arg(lane)
            .arg(seq)
            .arg("test-producer")
            .arg(5000)
            .arg("retry")
            .arg(item)
            .invoke(conn)
            .unwrap()
    }

    fn word(v: &[Value]) -> String {
        match v.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        }
    }

    /// A fast put whose answer was lost to a broken connection is retried through the put
    /// script: applied once if it went in (before a shutdown or not), refused if the shutdown
    /// came first. The transactions are sent by hand here, as the handle would send them.
    #[test]
    fn a_fast_put_retried_after_a_lost_answer_is_applied_once() {
        let Some(server) = Target::from_env().unwrap() else {
            eprintln!("\n!!! SKIPPED a_fast_put_retried_after_a_lost_answer_is_applied_once: no Redis server (install redis-server or set CONVEYOR_REDIS_URL) !!!\n");
            return;
        };
        let name = format!("unit-fast-retry-{}", std::process::id());
        let q: RedisQueue<u32> = RedisQueue::open(&server.url(), &name).unwrap();
        let keys = Keys::new(&name);
        let mut conn = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let token: String = redis::cmd("HGET")
            .arg(&keys.meta)
            .arg("token")
            .query(&mut conn)
            .unwrap();
        let enc = |n: u32| {
            let mut buf = Vec::new();
            Postcard.encode(&n, &mut buf).unwrap();
            buf
        };
        let xlen = |conn: &mut redis::Connection| -> usize {
            redis::cmd("XLEN").arg(&keys.items).query(conn).unwrap()
        };
        let lane = "unit/0";

        // went in, answer lost: the retry finds the record and does not put it again
        let ids: Vec<Value> = fast_put(&keys, lane, 7, &[enc(1)])
            .query(&mut conn)
            .unwrap();
        assert!(matches!(ids.as_slice(), [Value::BulkString(_)]), "{ids:?}");
        let r = retried_put(&mut conn, &keys, &token, (lane, 7), &enc(1));
        assert_eq!((word(&r), r.get(1)), ("ok".into(), Some(&Value::Int(1))));
        assert_eq!(xlen(&mut conn), 1, "the retry put it a second time");

        // went in, then the queue was shut down, then the retry: still applied once
        let _: Vec<Value> = fast_put(&keys, lane, 8, &[enc(2)])
            .query(&mut conn)
            .unwrap();
        q.shutdown(false).unwrap();
        let r = retried_put(&mut conn, &keys, &token, (lane, 8), &enc(2));
        assert_eq!((word(&r), r.get(1)), ("ok".into(), Some(&Value::Int(1))));
        assert_eq!(xlen(&mut conn), 2);

        // after the shutdown: the server refuses the entry, and the retry says closed although
        // the refused transaction wrote its record
        let ids: Vec<Value> = fast_put(&keys, lane, 9, &[enc(3)])
            .query(&mut conn)
            .unwrap();
        assert!(matches!(ids.as_slice(), [Value::ServerError(_)]), "{ids:?}");
        let r = retried_put(&mut conn, &keys, &token, (lane, 9), &enc(3));
        assert_eq!(word(&r), "closed", "{r:?}");
        assert_eq!(xlen(&mut conn), 2);

        // a peer that writes the stream directly (redis-py's xadd) is refused too
        let raw: redis::RedisResult<String> = redis::cmd("XADD")
            .arg(&keys.items)
            .arg("*")
            .arg("d")
            .arg(enc(4))
            .query(&mut conn);
        assert!(raw.is_err(), "{raw:?}");
        assert!(q.put(5).unwrap_err().is_closed());

        // what went in before the shutdown drains, then the queue says closed
        assert_eq!(q.get().unwrap(), 1);
        assert_eq!(q.get().unwrap(), 2);
        assert!(q.get().unwrap_err().is_closed());
        q.destroy().unwrap();
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let k = Keys::new("jobs");
        for key in [
            &k.items,
            &k.meta,
            &k.dead,
            &k.puts,
            &k.puts_at_shutdown,
            &k.producers,
        ] {
            assert!(key.starts_with("conveyor:{jobs}:"), "{key}");
        }
    }

    /// A server that does not know a script (here: its scripts flushed) runs it sent in full,
    /// and knows it by its SHA1 from then on.
    #[test]
    fn a_script_the_server_does_not_know_is_sent_in_full() {
        let Some(server) = Target::from_env().unwrap() else {
            eprintln!("\n!!! SKIPPED a_script_the_server_does_not_know_is_sent_in_full: no Redis server (install redis-server or set CONVEYOR_REDIS_URL) !!!\n");
            return;
        };
        let mut conn = redis::Client::open(server.url())
            .unwrap()
            .get_connection()
            .unwrap();
        let lua = Lua::new("return {KEYS[1], ARGV[1]}".to_string());
        let known = |conn: &mut redis::Connection| -> bool {
            let exists: Vec<bool> = redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(lua.script.get_hash())
                .query(conn)
                .unwrap();
            exists == [true]
        };
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query::<()>(&mut conn)
            .unwrap();
        assert!(!known(&mut conn));
        let r: Vec<String> = lua.key("k").arg("a").invoke(&mut conn).unwrap();
        assert_eq!(r, ["k", "a"]);
        assert!(known(&mut conn), "EVAL left the script in the cache");
        let r: Vec<String> = lua.key("k2").arg("b").invoke(&mut conn).unwrap();
        assert_eq!(r, ["k2", "b"]);
    }
}
