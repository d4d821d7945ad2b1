-- Fair shares by user: the first turn (BullMQ priority) of a pass's grid jobs.
-- KEYS[1] the triage's meta hash, KEYS[2] its user's jobs index (sorted by creation time).
-- ARGV[1] triage id, ARGV[2] the pass (`coarse` / `fine`), ARGV[3] the prefix of a triage's meta key,
-- ARGV[4] the number of grids being queued.
-- Marks the pass as queued (`queued_pass`) and returns 1 + the grids still queued by the user's other running
-- triages that have no more of them left (the older first among equals): so a user's triages take turns one
-- after the other, the shortest first, while another user's triage takes its turns beside them. Returns 0
-- when the triage has ended. (The other triages' meta keys are derived from the index; with a hash-tag
-- prefix they share the declared keys' slot.)
if ended(KEYS[1]) then return 0 end
redis.call('HSET', KEYS[1], 'queued_pass', ARGV[2])
local n = tonumber(ARGV[4])
local base = 0
local older = true
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if id == ARGV[1] then
    older = false
  else
    local m = redis.call('HMGET', ARGV[3] .. id, 'status', 'queued_pass', 'coarse_total', 'coarse_done', 'fine_total', 'fine_done')
    if m[1] == 'processing' and m[2] then
      local left
      if m[2] == 'coarse' then left = tonumber(m[3] or 0) - tonumber(m[4] or 0) else left = tonumber(m[5] or 0) - tonumber(m[6] or 0) end
      if left > 0 and (left < n or (left == n and older)) then base = base + left end
    end
  end
end
return base + 1
