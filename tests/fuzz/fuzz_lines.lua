-- fuzz_lines: aep.lines, the C reader of `aep stream` input: JSON Lines (reader:line()), the
-- streaming JSON array splitter (reader:array_item()), raw reads, on plain or gzip input.
-- Byte 1: bit 0 = gzip the rest first; bits 1-2 = method (line, array_item, read, a mix driven by
-- the input); bits 3-5 = max_record. The rest is the file. The whole input also goes through
-- lines.has_long_number (both modes) and, when it is JSON, lines.quote_long_integers.
-- Must hold: no raise; lines carry no "\n" and fit max_record; line numbers only grow; failures
-- carry the documented codes; tell() never passes the uncompressed size; the reader ends;
-- quoting long integers keeps valid JSON valid and the same shape.
local lines = require "aep.lines"
local cjson_safe = require "cjson.safe"

local LIMITS = { 1, 16, 100, 4095, 4097, 70000, 64 * 1024 * 1024, 8 }

local function drive(r, method, data, limit, bound)
  local steps, last_line = 0, 0
  local pick, array_done = 1, false
  while true do
    steps = steps + 1
    assert(steps <= bound, "reader did not end")
    local m = method
    if m == 3 then
      pick = pick % math.max(#data, 1) + 1
      m = #data > 0 and data:byte(pick) % 3 or 0
      if m == 1 and array_done then m = 0 end
    end
    if m == 0 then
      local text, n, code = r:line()
      if text == nil then
        if n == nil then return end
        assert(code == "TOO_LARGE" or code == "READ", "line: code " .. tostring(code))
        if code == "READ" then return end
      else
        assert(not text:find("\n", 1, true), "a line holds \\n")
        assert(#text <= limit, "a line longer than max_record")
        assert(math.type(n) == "integer" and n > last_line, "line numbers went back")
        last_line = n
      end
    elseif m == 1 then
      local text, n, code = r:array_item()
      if text == nil then
        if n == nil then
          if method == 1 then return end
          array_done = true
        else
          assert(code == "JSON" or code == "TRAILING" or code == "READ", "array_item: code " .. tostring(code))
          return
        end
      else
        assert(#text > 0, "empty element")
        assert(math.type(n) == "integer" and n >= 1)
      end
    else
      local want = (#data > 0 and data:byte(steps % #data + 1) or 1) * 37 + 1
      local chunk, err, code = r:read(want)
      if chunk == nil then
        if err == nil then return end
        assert(code == "READ", "read: code " .. tostring(code))
        return
      end
      assert(#chunk >= 1 and #chunk <= want)
    end
  end
end

-- lines.has_long_number, checked against the rule written plainly: "text" mode sees a run of 15
-- digits (one '.' allowed among them) anywhere; "json" mode only outside JSON strings, so it
-- never says yes when "text" mode says no.
local function long_run(s)
  for run in s:gmatch("[%d.]+") do
    local digits, dots = 0, 0
    for c in run:gmatch(".") do
      if c == "." then
        dots = dots + 1
        if dots > 1 then digits, dots = 0, 0 end
      else
        digits = digits + 1
        if digits >= 15 then return true end
      end
    end
  end
  return false
end

local function check_long_number(data)
  local text = lines.has_long_number(data, "text")
  assert(text == long_run(data), "has_long_number text mode disagrees with the rule")
  if lines.has_long_number(data) then assert(text, "json mode flagged what text mode did not") end
end

local function check_quote_long_integers(data)
  local quoted = lines.quote_long_integers(data)
  if not quoted then return end
  local before = cjson_safe.decode(data)
  if before == nil then return end
  local after = cjson_safe.decode(quoted)
  assert(after ~= nil, "quoting long integers broke valid JSON")
  assert(type(after) == type(before) or type(after) == "string", "quoting long integers changed the shape")
end

return function(s)
  if #s < 1 then return end
  check_long_number(s)
  check_quote_long_integers(s)
  local b = s:byte(1)
  local data = s:sub(2)
  local plain = data
  if b & 1 == 1 then data = fuzz.gzip(data) end
  local method = (b >> 1) & 3
  local limit = LIMITS[((b >> 3) & 7) + 1]
  local path, fd = fuzz.memfile(data)
  local r, err, code = lines.open(path, { max_record = limit, buffer = 4096 })
  fuzz.close(fd)
  assert(r, "open failed: " .. tostring(err) .. " " .. tostring(code))
  local known = (b & 1 == 1) or plain:sub(1, 2) ~= "\31\139"
  drive(r, method, data, limit, (known and #plain or 10000000) + 3)
  if known then
    assert(r:tell() <= #plain, "tell() past the end")
    local _, newlines = plain:gsub("\n", "")
    assert(r:lineno() <= newlines, "more lines than newlines")
  end
  r:close()
  r:close()
end
