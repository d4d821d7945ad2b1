-- Ends a triage (once: an ended triage is never changed again) and starts its records' expiry.
-- KEYS[1] meta hash, KEYS[2] selected list, KEYS[3] ranks hash, KEYS[4] finished index (sorted set),
-- KEYS[5] groups string, KEYS[6…] every other key of the triage (to expire with the rest).
-- ARGV[1] meta fields (JSON array: field, value, …), ARGV[2] selected (JSON array of indexes, best first),
-- ARGV[3] ranks (JSON array: index, rank, …), ARGV[4] seconds the records are kept (0 = forever),
-- ARGV[5] triage id, ARGV[6] ended at (ms), ARGV[7] groups JSON ('' to leave them as they are).
-- Returns 1 ended, 0 already ended or no such triage.
if ended(KEYS[1]) then return 0 end
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[1])))
local selected = cjson.decode(ARGV[2])
redis.call('DEL', KEYS[2])
for i = 1, #selected, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(selected, i, math.min(i + 999, #selected)))
end
local ranks = cjson.decode(ARGV[3])
for i = 1, #ranks, 1000 do
  redis.call('HSET', KEYS[3], unpack(ranks, i, math.min(i + 999, #ranks)))
end
if ARGV[7] ~= '' then redis.call('SET', KEYS[5], ARGV[7], 'NX') end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  for i = 1, #KEYS do
    if i ~= 4 then redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
return 1
