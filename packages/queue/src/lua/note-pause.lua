-- Notes one more wait of a triage for its storage, and says why in its status: only while the triage exists
-- (a deleted triage is never recreated as a hash of outage fields alone).
-- KEYS[1] meta hash.
-- ARGV[1] now (ms), ARGV[2] the outage's reason, ARGV[3] first wait (ms), ARGV[4] longest wait (ms),
-- ARGV[5] how long an outage may last before photos fail instead of waiting (ms).
-- The outage began at `storage_outage_since` (set by its first wait); `storage_pauses` counts the waits. Each
-- wait doubles the last, up to the longest.
-- Returns { the status line, the wait (ms, as a string) }, or 0 when there is no such triage (nothing written).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local now = tonumber(ARGV[1])
redis.call('HSETNX', KEYS[1], 'storage_outage_since', ARGV[1])
local pauses = redis.call('HINCRBY', KEYS[1], 'storage_pauses', 1)
local since = tonumber(redis.call('HGET', KEYS[1], 'storage_outage_since')) or now
local wait = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(20, pauses - 1))
local left = math.max(0, math.floor((tonumber(ARGV[5]) - (now - since)) / 1000 + 0.5))
local line = 'storage unavailable (' .. ARGV[2] .. '): waiting ' .. tostring(math.floor(wait / 100 + 0.5) / 10) ..
  ' s before try ' .. tostring(pauses + 1) .. '; photos fail with this reason if it lasts ' .. tostring(left) .. ' s more'
redis.call('HSET', KEYS[1], 'error_message', line)
return { line, tostring(wait) }
