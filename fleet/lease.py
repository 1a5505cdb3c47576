"""Leases: which task attempt holds a piece of work (a scan chunk, a rollout batch) and until when.

A worker's heartbeat says the worker lives; it cannot say the worker still runs a given chunk (after a
broker reconnection a worker may have dropped a task it had taken). So each attempt holds a lease on its
work's hash (`lease` = `{task id}@{worker}`, `lease_until` in Redis server time), renewed while it runs.
The reaper re-queues work whose lease ran out, or whose worker stopped beating; a delivery that finds
the work finished, or held by another live attempt, does nothing (so a stale redelivery never rewrites
a finished state).

The scripts take the time from Redis itself (`TIME`), so the clocks of the machines never matter.
"""

from __future__ import annotations

from enum import StrEnum

# KEYS[1] the work's hash; ARGV: holder, worker, lease seconds, the state to set, final states (spaces)
CLAIM = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local f = redis.call('HMGET', KEYS[1], 'state', 'lease', 'lease_until')
local state, holder, till = f[1], f[2], tonumber(f[3]) or 0
if not state then return 'gone' end
for s in string.gmatch(ARGV[5], '%S+') do
  if s == state then return 'finished' end
end
if holder and holder ~= '' and holder ~= ARGV[1] and till > t and (state == 'reserved' or state == 'running') then
  return 'held'
end
if ARGV[4] == 'reserved' and state == 'running' and holder == ARGV[1] then return 'ok' end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'worker', ARGV[2], 'lease', ARGV[1],
           'lease_until', tostring(t + tonumber(ARGV[3])))
return 'ok'
"""

# KEYS[1]; ARGV: holder, worker, lease seconds. 1 = still ours (or taken back after a re-queue nobody took up)
RENEW = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local f = redis.call('HMGET', KEYS[1], 'state', 'lease')
local state, holder = f[1], f[2]
if holder == ARGV[1] and (state == 'running' or state == 'reserved') then
  redis.call('HSET', KEYS[1], 'lease_until', tostring(t + tonumber(ARGV[3])))
  return 1
end
if state == 'queued' and (not holder or holder == '') then
  redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[2], 'lease', ARGV[1],
             'lease_until', tostring(t + tonumber(ARGV[3])))
  return 1
end
return 0
"""

# KEYS[1]; ARGV: the holder the reaper saw. Puts lost work back to queued, once, for whoever re-sends it.
REQUEUE = """
local f = redis.call('HMGET', KEYS[1], 'state', 'lease')
local state, holder = f[1], f[2] or ''
if (state == 'reserved' or state == 'running') and holder == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'worker', '', 'lease', '', 'lease_until', '0', 'missing_since', '0')
  redis.call('HINCRBY', KEYS[1], 'requeues', 1)
  return 1
end
return 0
"""

# KEYS[1]; ARGV: the state to leave, the state to set, then field/value pairs. 1 = this caller moved it
MOVE = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS[1]; ARGV: the new state, then field/value pairs: set unless the work is already done
FINISH_UNLESS_DONE = """
if redis.call('HGET', KEYS[1], 'state') == 'done' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


# KEYS[1]; ARGV: field, expected value, new value. 1 = this caller changed it (two drivers never both do)
SWAP_FIELD = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if (value or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class Claim(StrEnum):
    OK = "ok"
    GONE = "gone"  # the scan or rollout expired
    FINISHED = "finished"  # done already (a stale or duplicate delivery)
    HELD = "held"  # another live attempt runs it


def holder(task_id: str, worker: str) -> str:
    return f"{task_id}@{worker}"


def claim_result(raw: object) -> Claim:
    return Claim(raw.decode() if isinstance(raw, bytes) else str(raw))
