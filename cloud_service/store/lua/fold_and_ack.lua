-- Folds and acknowledges consumer-group entries, each exactly once (cloud_service.calibration.fold);
-- needs fold.lua.
-- KEYS[1]: the stream; KEYS[4i-2], KEYS[4i-1], KEYS[4i], KEYS[4i+1]: entry i's statistics prefix, late-label
-- marker, fold marker and policy-version totals. ARGV[1]: the group; ARGV[2]: the markers' TTL;
-- ARGV[3]: JSON [[entry id, fold or false], ...].
-- Returns {acknowledged, folded}.
local group, ttl = ARGV[1], ARGV[2]
local items = cjson.decode(ARGV[3])
local acked, folded = 0, 0
local markers = {}
for i = 1, #items do markers[i] = KEYS[4 * i - 1] end
local late = redis.call('MGET', unpack(markers))
for i = 1, #items do
  local id, spec = items[i][1], items[i][2]
  if redis.call('XACK', KEYS[1], group, id) == 1 then
    acked = acked + 1
    if spec then
      fold(KEYS[4 * i - 2], KEYS[4 * i + 1], spec, late[i])
      redis.call('SET', KEYS[4 * i], id, 'EX', ttl)
      folded = folded + 1
    end
  end
end
flush()
return {acked, folded}
