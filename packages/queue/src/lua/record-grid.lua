-- Records one judged grid and advances the triage's counters, once per grid and only while it runs.
-- KEYS[1] meta hash, KEYS[2] grid records hash, KEYS[3] the pass's verdicts hash (coarse or fine).
-- ARGV[1] the grid's field (`coarse:N` / `fine:N`), ARGV[2] GridRecord JSON, ARGV[3] the counter to advance
-- (`coarse_done` / `fine_done`), ARGV[4] photos newly failed, ARGV[5] input tokens, ARGV[6] output tokens,
-- ARGV[7] cost (USD), ARGV[8] updated at (ISO), ARGV[9] verdicts (JSON array: index, verdict JSON, …).
-- Returns 1 recorded, 0 already recorded or the triage has ended (nothing changed).
if ended(KEYS[1]) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'tokens_in', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'tokens_out', ARGV[6])
redis.call('HINCRBYFLOAT', KEYS[1], 'cost_usd', ARGV[7])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[8])
local verdicts = cjson.decode(ARGV[9])
if #verdicts > 0 then redis.call('HSET', KEYS[3], unpack(verdicts)) end
return 1
