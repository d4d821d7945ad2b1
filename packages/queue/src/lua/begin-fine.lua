-- Ends the coarse pass and starts the fine one: its survivors, its grid sizes, the near-duplicate groups.
-- KEYS[1] meta hash, KEYS[2] survivors list, KEYS[3] groups string.
-- ARGV[1] fine grid sizes (JSON array), ARGV[2] survivors (JSON array of photo indexes, in grid order),
-- ARGV[3] updated at (ISO), ARGV[4] groups (JSON array).
-- Returns 1 started, 0 not in the coarse pass (already started, or ended: nothing changed).
if ended(KEYS[1]) then return 0 end
if redis.call('HGET', KEYS[1], 'phase') ~= 'coarse_pass' then return 0 end
redis.call('DEL', KEYS[2])
local survivors = cjson.decode(ARGV[2])
for i = 1, #survivors, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(survivors, i, math.min(i + 999, #survivors)))
end
local sizes = cjson.decode(ARGV[1])
redis.call('HSET', KEYS[1], 'phase', 'fine_pass', 'fine_sizes', ARGV[1], 'fine_total', #sizes, 'fine_done', 0,
  'pass1_survivors', #survivors, 'updated_at', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
return 1
