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

# KEYS: lease_1, ev_1, lease_2, ev_2, ... ARGV: count, value_1, from_1, value_2, from_2, ...
# Per partition: -1 (not ours) or its entries ({id, {field, value, ...}}; a trimmed pending
# entry has no fields). `from` is '>' (new events) or an id (pending events after it).
READ = """
local out = {}
for i = 1, #KEYS / 2 do
  if redis.call('GET', KEYS[2 * i - 1]) ~= ARGV[2 * i] then
    out[i] = -1
  else
    local r = redis.call('XREADGROUP', 'GROUP', 'g', 'owner', 'COUNT', ARGV[1],
                         'STREAMS', KEYS[2 * i], ARGV[2 * i + 1])
    if r then out[i] = r[1][2] else out[i] = {} end
  end
end
return out
"""

# KEYS: lease, rev, s, ev, out. ARGV: value, n, n acknowledged event ids, results, then
# operations:
#   W key expect newrev record   write a session if its revision is `expect` ('' = none)
#   D key expect                 delete a session at revision `expect`
#   X minid                      forwarded: drop `out` entries before `minid`
# `results` (the acknowledged events' results and replies, and replies no host waits for,
# as one JSON text; '' if none) becomes one `out` entry. Every compare-and-set is checked
# before anything is written: {-2, key, found} writes nothing. {-1}: the lease is not ours.
# {1, out id or ''}: done.
COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local nacks = tonumber(ARGV[2])
local first = 4 + nacks
local n = #ARGV
local seen = {}
local i = first
while i <= n do
  local op = ARGV[i]
  if op == 'W' or op == 'D' then
    local key, expect = ARGV[i + 1], ARGV[i + 2]
    local cur = seen[key]
    if cur == nil then cur = redis.call('HGET', KEYS[2], key) or '' end
    if cur ~= expect then return {-2, key, cur} end
    if op == 'W' then seen[key] = ARGV[i + 3]; i = i + 5 else seen[key] = ''; i = i + 3 end
  elseif op == 'X' then i = i + 2
  else return {-3, op} end
end
i = first
while i <= n do
  local op = ARGV[i]
  if op == 'W' then
    redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 3])
    redis.call('HSET', KEYS[3], ARGV[i + 1], ARGV[i + 4])
    i = i + 5
  elseif op == 'D' then
    redis.call('HDEL', KEYS[2], ARGV[i + 1])
    redis.call('HDEL', KEYS[3], ARGV[i + 1])
    i = i + 3
  else
    redis.call('XTRIM', KEYS[5], 'MINID', ARGV[i + 1])
    i = i + 2
  end
end
local j = 3
while j < 3 + nacks do
  local k = math.min(j + 999, 2 + nacks)
  redis.call('XACK', KEYS[4], 'g', unpack(ARGV, j, k))
  j = k + 1
end
if nacks > 0 then
  -- Events before the oldest unacknowledged one are done: drop them from the stream.
  local pend = redis.call('XPENDING', KEYS[4], 'g')
  if pend[1] == 0 then redis.call('XTRIM', KEYS[4], 'MINID', ARGV[2 + nacks])
  else redis.call('XTRIM', KEYS[4], 'MINID', pend[2]) end
end
local out = ''
if ARGV[3 + nacks] ~= '' then out = redis.call('XADD', KEYS[5], '*', 'b', ARGV[3 + nacks]) end
return {1, out}
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
