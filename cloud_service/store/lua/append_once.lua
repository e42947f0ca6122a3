-- Appends outcome records at most once per query id (cloud_service.outcomes.writer); needs fold.lua.
-- KEYS[1]: the stream; KEYS[4i-2], KEYS[4i-1], KEYS[4i], KEYS[4i+1]: record i's dedupe key, statistics
-- prefix, late-label marker and policy-version totals (all in the stream's hash slot).
-- ARGV[1]: dedupe TTL (s); ARGV[2]: approximate MAXLEN; ARGV[3]: a JSON array holding, for each
-- record, its fields as an array [field, value, field, value, ...]; ARGV[4]: a JSON array holding, for
-- each record, its statistics fold (see fold.lua) or false.
-- Returns a string of one character per record: "1" appended, "0" already logged.
local ttl, maxlen = ARGV[1], ARGV[2]
local records = cjson.decode(ARGV[3])
local folds = cjson.decode(ARGV[4])
local added = {}
local markers = {}
for i = 1, #records do markers[i] = KEYS[4 * i] end
local late = redis.call('MGET', unpack(markers))
for i = 1, #records do
  local seen = KEYS[4 * i - 2]
  if redis.call('EXISTS', seen) == 0 then
    local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(records[i]))
    redis.call('SET', seen, id, 'EX', ttl)
    local spec = folds[i]
    if spec then fold(KEYS[4 * i - 1], KEYS[4 * i + 1], spec, late[i]) end
    added[i] = '1'
  else
    added[i] = '0'
  end
end
flush()
return table.concat(added)
