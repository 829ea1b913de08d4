"""The Lua scripts of the worker fleet (convo_fsm.storage.fleet). Each touches the keys of one
partition only (one Redis Cluster slot), except READ, which reads several partitions at once
on a single server (on a Cluster it is called once per partition).

A lease's value is `<token>|<worker>`; every script but ACQUIRE first checks that the lease
still holds the caller's value, so a worker whose lease expired or moved cannot change
anything, however long it was paused (the fencing token makes values of two acquisitions by
the same worker differ too).
"""

from __future__ import annotations

# KEYS: lease, fence, ev. ARGV: worker, ttl_ms, the caller's current value ('' if none).
# {2, value}: acquired with a new token (also when the caller held it: every takeover gets
# its own token); {0, holder}: someone else holds it.
ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[3] then return {0, cur} end
local t = redis.call('INCR', KEYS[2])
local val = t .. '|' .. ARGV[1]
redis.call('SET', KEYS[1], val, 'PX', ARGV[2])
redis.pcall('XGROUP', 'CREATE', KEYS[3], 'g', '0', 'MKSTREAM')
return {2, val}
"""

# KEYS: lease. ARGV: value, ttl_ms.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: value.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lease_1, ev_1, lease_2, ev_2, ... ARGV: count, then a JSON array [value_1, from_1,
# tail_1, value_2, from_2, tail_2, ...] (one argument: packing arguments costs the worker
# more than Redis's work). Per partition: -1 (not ours) or its entries ({id, {field, value,
# ...}}; a trimmed pending entry has no fields). `from` is '>' (new events) or an id (pending
# events after it). No new events: the id of the stream's last entry ('0-0' if none)
# instead; every later event's id is greater (the worker waits for one with a plain XREAD
# BLOCK from there, which changes nothing, so it needs no fencing). `tail` (reading new
# events; '' if not known) is the last entry the worker knows of: if it is still the
# stream's last, the partition is skipped (no lease check needed: nothing is read), so a
# read costs little for the partitions that have no news.
_READ_PARTS = """
local function read_parts(k0, k1, a0)
  local a = cjson.decode(ARGV[a0 + 2])
  local count = ARGV[a0 + 1]
  local out = {}
  for i = 1, (k1 - k0) / 2 do
    local lease, ev = KEYS[k0 + 2 * i - 1], KEYS[k0 + 2 * i]
    local from, tail = a[3 * i - 1], a[3 * i]
    local last = nil
    if from == '>' then
      local t = redis.call('XREVRANGE', ev, '+', '-', 'COUNT', 1)
      if t[1] then last = t[1][1] else last = '0-0' end
    end
    if last ~= nil and last == tail then
      out[i] = tail
    elseif redis.call('GET', lease) ~= a[3 * i - 2] then
      out[i] = -1
    else
      local r = redis.call('XREADGROUP', 'GROUP', 'g', 'owner', 'COUNT', count,
                           'STREAMS', ev, from)
      if r then out[i] = r[1][2]
      elseif last ~= nil then out[i] = last
      else out[i] = {} end
    end
  end
  return out
end
"""
READ = _READ_PARTS + "return read_parts(0, #KEYS, 0)"

# One partition's commit, shared by COMMIT and COMMIT_MANY. `lease, rev, s, ev, out`: its keys;
# `value` its lease value; `work` a JSON text [acknowledged event ids, operations] (one
# argument, decoded here: packing a command's arguments is a worker's largest cost), the
# operations a flat list:
#   W key expect newrev record   write a session if its revision is `expect` ('' = none)
#   D key expect                 delete a session at revision `expect`
#   X minid                      forwarded: drop `out` entries before `minid`
# Every compare-and-set is checked before anything is written. Returns 1 (done), -1 (the
# lease is not ours), -2 (a compare-and-set failed: nothing written), -3 (a bad operation).
_COMMIT_PART = """
local function commit_part(lease, rev, s, ev, out, value, work)
  if redis.call('GET', lease) ~= value then return -1 end
  local w = cjson.decode(work)
  local acks, ops = w[1], w[2]
  local n = #ops
  local seen = {}
  local i = 1
  while i <= n do
    local op = ops[i]
    if op == 'W' or op == 'D' then
      local key, expect = ops[i + 1], ops[i + 2]
      local cur = seen[key]
      if cur == nil then cur = redis.call('HGET', rev, key) or '' end
      if cur ~= expect then return -2 end
      if op == 'W' then seen[key] = ops[i + 3]; i = i + 5 else seen[key] = ''; i = i + 3 end
    elseif op == 'X' then i = i + 2
    else return -3 end
  end
  i = 1
  while i <= n do
    local op = ops[i]
    if op == 'W' then
      redis.call('HSET', rev, ops[i + 1], ops[i + 3])
      redis.call('HSET', s, ops[i + 1], ops[i + 4])
      i = i + 5
    elseif op == 'D' then
      redis.call('HDEL', rev, ops[i + 1])
      redis.call('HDEL', s, ops[i + 1])
      i = i + 3
    else
      redis.call('XTRIM', out, 'MINID', ops[i + 1])
      i = i + 2
    end
  end
  local nacks = #acks
  local j = 1
  while j <= nacks do
    local k = math.min(j + 999, nacks)
    redis.call('XACK', ev, 'g', unpack(acks, j, k))
    j = k + 1
  end
  if nacks > 0 then
    -- Events before the oldest unacknowledged one are done: drop them from the stream.
    local pend = redis.call('XPENDING', ev, 'g')
    if pend[1] == 0 then redis.call('XTRIM', ev, 'MINID', acks[nacks])
    else redis.call('XTRIM', ev, 'MINID', pend[2]) end
  end
  return 1
end
"""

# One partition (a Redis Cluster: its keys share one slot). KEYS: lease, rev, s, ev, out.
# ARGV: value, work (see _COMMIT_PART), results: the acknowledged events' results and
# replies, and replies no host waits for, as one JSON text ('' if none), which becomes one
# `out` entry the worker then forwards to the hosts. {1, out id or ''}: done; {code}:
# refused (see _COMMIT_PART), nothing written.
COMMIT = _COMMIT_PART + """
local r = commit_part(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2])
if r ~= 1 then return {r} end
local out = ''
if ARGV[3] ~= '' then out = redis.call('XADD', KEYS[5], '*', 'b', ARGV[3]) end
return {1, out}
"""

# Many partitions on one server, and their results sent in the same step: no `out` entry and
# no forwarding round trip (a result reaches its host atomically with its commit, or not at
# all). KEYS: lease, rev, s, ev, out of each partition, then the result streams (hosts' and
# the outbox). ARGV: the number of partitions, the streams' MAXLEN, then per partition:
# value, work (see _COMMIT_PART), nfrag, then nfrag pairs (stream index in KEYS, a JSON
# fragment: results without the enclosing brackets). Returns each partition's code (see
# _COMMIT_PART); a refused partition's results are not sent. Each stream gets one entry: the
# fragments of the committed partitions, joined.
_COMMIT_MANY = """
local function commit_many(k0, a0)
  local nparts = tonumber(ARGV[a0 + 1])
  local maxlen = ARGV[a0 + 2]
  local codes = {}
  local frags = {}
  local order = {}
  local i = a0 + 3
  for p = 1, nparts do
    local k = k0 + 5 * (p - 1)
    local r = commit_part(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5],
                          ARGV[i], ARGV[i + 1])
    codes[p] = r
    local nfrag = tonumber(ARGV[i + 2])
    if r == 1 then
      for q = 1, nfrag do
        local idx = k0 + tonumber(ARGV[i + 1 + 2 * q])
        if frags[idx] == nil then frags[idx] = {}; order[#order + 1] = idx end
        local t = frags[idx]
        t[#t + 1] = ARGV[i + 2 + 2 * q]
      end
    end
    i = i + 3 + 2 * nfrag
  end
  for _, idx in ipairs(order) do
    redis.call('XADD', KEYS[idx], 'MAXLEN', maxlen, '*', 'o', '', 'b',
               '[' .. table.concat(frags[idx], ',') .. ']')
  end
  return codes
end
"""
COMMIT_MANY = _COMMIT_PART + _COMMIT_MANY + "return commit_many(0, 0)"

# A busy worker's cycle in one call, one server: COMMIT_MANY's work, then READ's. ARGV[1]:
# the number of KEYS COMMIT_MANY's part takes (they come first), ARGV[2] the number of its
# arguments (from ARGV[3]); READ's keys and arguments follow. Returns {codes, entries}.
COMMIT_READ = _COMMIT_PART + _COMMIT_MANY + _READ_PARTS + """
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local codes = commit_many(0, 2)
return {codes, read_parts(nk, #KEYS, 2 + na)}
"""

# A host's events, one server: KEYS the partitions' streams (repeats allowed), ARGV each
# event's body. Returns the entry ids (one command instead of a pipeline of XADDs: a
# command's packing and parsing cost the host more than Redis's work).
ENQUEUE = """
local ids = {}
for i = 1, #KEYS do ids[i] = redis.call('XADD', KEYS[i], '*', 'm', ARGV[i]) end
return ids
"""

# KEYS: lease, journal. ARGV: value, entry.
JOURNAL = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""

# KEYS: members. ARGV: worker, ttl_ms, '1' to leave. Returns the live workers (heartbeat
# within ttl, by the server's clock).
HEARTBEAT = """
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then redis.call('ZREM', KEYS[1], ARGV[1])
else redis.call('ZADD', KEYS[1], ms, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - 100 * tonumber(ARGV[2]))
return redis.call('ZRANGEBYSCORE', KEYS[1], ms - tonumber(ARGV[2]), '+inf')
"""
