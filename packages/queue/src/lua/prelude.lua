-- Put before every script of the store when it is loaded (see ../scripts.ts): helpers they share.

-- Whether the triage whose meta hash is `meta` is gone or has ended (completed, failed, cancelled): a script
-- that advances a triage then changes nothing.
local function ended(meta)
  local st = redis.call('HGET', meta, 'status')
  return st == false or st == 'completed' or st == 'failed' or st == 'cancelled'
end
