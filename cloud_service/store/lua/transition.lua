-- One policy rollout transition, compare-and-set (cloud_service.policies.redis_store).
-- KEYS: history stream, versions hash. ARGV: expected last entry id, history length, number of new
-- versions n, n (version, bytes) pairs, then the new entry's field/value pairs.
-- Returns 1 when appended, -2 when the last entry moved on (retry), -1 when a version exists with other bytes.
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local last_id = '0-0'
if last then last_id = last[1] end
if last_id ~= ARGV[1] then return -2 end
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local old = redis.call('HGET', KEYS[2], ARGV[4 + 2 * i])
  if old and old ~= ARGV[5 + 2 * i] then return -1 end
end
for i = 0, n - 1 do redis.call('HSET', KEYS[2], ARGV[4 + 2 * i], ARGV[5 + 2 * i]) end
local entry = {}
for i = 4 + 2 * n, #ARGV do entry[#entry + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(entry))
return 1
