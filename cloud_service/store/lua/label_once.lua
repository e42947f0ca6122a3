-- Writes a late label once per query id and moves the record's weight (cloud_service.outcomes.labels);
-- needs fold.lua.
-- KEYS: [1] labelled marker, [2] labels stream, [3] the device record's dedupe key (value: its entry id),
-- [4] its statistics prefix, [5] its worker-fold marker, [6] the outcome stream, [7] its policy version's
-- totals. ARGV: [1] TTL (s), [2] label code, [3] label source, [4] query id, [5] the record's fold as
-- folded (label u).
-- Returns 1 moved, 2 waiting for the record's fold, 0 labelled before.
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[2], '*', 'qid', ARGV[4], 'label', ARGV[2], 'source', ARGV[3])
local id = redis.call('GET', KEYS[3])
if not id then return 2 end
local folded = redis.call('EXISTS', KEYS[5]) == 1
if not folded then
  local entry = redis.call('XRANGE', KEYS[6], id, id)[1]
  if not entry then return 2 end
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'st' then folded = true end
  end
end
if not folded then return 2 end
local spec = cjson.decode(ARGV[5])
bump_record(KEYS[4], KEYS[7], spec, 'u', -1, false)
bump_record(KEYS[4], KEYS[7], spec, ARGV[2], 1, false)
flush()
return 1
