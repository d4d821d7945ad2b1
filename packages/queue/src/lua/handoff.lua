-- Records a photo's hand-off to scoring: once per photo (a redelivered hand-off changes nothing), and only
-- while the triage exists.
-- KEYS[1] meta hash, KEYS[2] hand-off hash.
-- ARGV[1] photo id, ARGV[2] `ok`, or why the photo could not be handed off.
-- Returns 1 recorded, 0 already recorded or no such triage.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if ARGV[2] == 'ok' then
  redis.call('HINCRBY', KEYS[1], 'handoff_done', 1)
else
  redis.call('HINCRBY', KEYS[1], 'handoff_failed', 1)
  redis.call('HSET', KEYS[1], 'handoff_error', ARGV[2])
end
return 1
