-- Accepts a triage: its settings and photos, and its entry in its user's index.
-- KEYS[1] meta hash, KEYS[2] photos hash, KEYS[3] the user's jobs index (sorted set).
-- ARGV[1] triage id, ARGV[2] created at (ms), ARGV[3] meta fields (JSON array: field, value, …),
-- ARGV[4] photos (JSON array of PhotoInput JSON, by index), ARGV[5] the user's cap on active jobs (0 = none),
-- ARGV[6] the prefix of a triage's meta key (the key without the id).
-- Returns 1 created, 0 the id is taken, -N the user already has N ≥ cap active jobs. Counting the user's
-- active jobs and adding this one is one step, so concurrent starts can never exceed the cap. (Their meta
-- keys are derived here from the index; with a hash-tag prefix they share the declared keys' slot.)
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local cap = tonumber(ARGV[5])
if cap > 0 then
  local active = 0
  for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    local st = redis.call('HGET', ARGV[6] .. id, 'status')
    if st == 'pending' or st == 'uploading' or st == 'processing' then active = active + 1 end
  end
  if active >= cap then return -active end
end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[3])))
local photos = cjson.decode(ARGV[4])
local args = {}
for i, p in ipairs(photos) do
  args[#args + 1] = tostring(i - 1)
  args[#args + 1] = p
  if #args >= 1000 then redis.call('HSET', KEYS[2], unpack(args)); args = {} end
end
if #args > 0 then redis.call('HSET', KEYS[2], unpack(args)) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
