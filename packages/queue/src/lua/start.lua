-- Starts a pending triage: processing, coarse pass.
-- KEYS[1] meta hash. ARGV[1] now (ISO).
-- Returns 1 started, 0 it was not pending (nothing changed).
if ended(KEYS[1]) then return 0 end
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'processing', 'phase', 'coarse_pass', 'started_at', ARGV[1], 'updated_at', ARGV[1])
return 1
