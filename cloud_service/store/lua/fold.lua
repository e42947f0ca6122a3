-- The statistics fold shared by the scripts that count records (see cloud_service.outcomes.statistics).
-- fold(stats, arm, spec, late): one record under the stats prefix `stats` and into the totals `arm` of the
-- policy version it was routed with; spec = {label, weight, weight^2 (both integers in millionths), model,
-- sig, bin, sig, bin, ...}; late: a label written before the record arrived (labelled:<qid>), which wins
-- over 'u'. Folds add up in a table; flush() (once, at the end of the script) sends one BITFIELD per
-- histogram touched. bump_record is shared with the label mover.
local pending = {}
local seen_meta = {}
local label_index = {c = 0, w = 1, u = 2}
local function bump(key, offset, amount)
  local bins = pending[key]
  if not bins then
    bins = {}
    pending[key] = bins
  end
  bins[offset] = (bins[offset] or 0) + amount
end
local key_cache = {}
local function keys_of(stats, sig)
  local by_sig = key_cache[stats]
  if not by_sig then
    by_sig = {}
    key_cache[stats] = by_sig
  end
  local keys = by_sig[sig]
  if not keys then
    local prefix = stats .. ':' .. sig
    keys = {n = prefix .. ':n', t = prefix .. ':t',
            c = prefix .. ':w:c', w = prefix .. ':w:w', u = prefix .. ':w:u'}
    by_sig[sig] = keys
  end
  return keys
end
local function bump_totals(key, at, sign, w, w2)
  bump(key, at, sign)
  bump(key, 3 + at, w)
  bump(key, 6 + at, w2)
end
local function bump_record(stats, arm, spec, label, sign, count)
  local w, w2, at = sign * tonumber(spec[2]), sign * tonumber(spec[3]), label_index[label]
  for j = 5, #spec, 2 do
    local keys, bin = keys_of(stats, spec[j]), spec[j + 1]
    if count then bump(keys.n, bin, 1) end
    bump(keys[label], bin, w)
    bump_totals(keys.t, at, sign, w, w2)
  end
  bump_totals(arm, at, sign, w, w2)
end
local function fold(stats, arm, spec, late)
  local label = spec[1]
  if label == 'u' and late then label = late end
  if not seen_meta[stats] then
    redis.call('HSETNX', stats .. ':meta', 'model', spec[4])
    seen_meta[stats] = true
  end
  bump_record(stats, arm, spec, label, 1, true)
end
local function flush()
  for key, bins in pairs(pending) do
    local args, ops = {}, 0
    for offset, amount in pairs(bins) do
      if amount ~= 0 then
        args[#args + 1] = 'INCRBY'
        args[#args + 1] = 'i64'
        args[#args + 1] = '#' .. offset
        args[#args + 1] = string.format('%d', amount)
        ops = ops + 1
        if ops == 1000 then
          redis.call('BITFIELD', key, unpack(args))
          args, ops = {}, 0
        end
      end
    end
    if ops > 0 then redis.call('BITFIELD', key, unpack(args)) end
  end
end
