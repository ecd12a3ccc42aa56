-- bench/results_section.lua: each bench script owns one section of bench/RESULTS.md, between
-- "<!-- NAME: begin (SCRIPT) -->" and "<!-- NAME: end -->"; it is replaced in place, or appended
-- after a blank line when the file has none yet (bench/stream.lua rewrites the file first).
--
--   local write_section = dofile(ROOT .. "/bench/results_section.lua")
--   write_section(path, "startup", "bench/startup.lua", text)
return function(path, name, script, text)
  local BEGIN = "<!-- " .. name .. ": begin (" .. script .. ") -->"
  local END = "<!-- " .. name .. ": end -->"
  local old = ""
  local f = io.open(path, "rb")
  if f then old = f:read("a"); f:close() end
  local section = BEGIN .. "\n" .. text .. END .. "\n"
  local a = old:find(BEGIN, 1, true)
  local z = a and old:find(END, a, true)
  local new
  if a and z then
    new = old:sub(1, a - 1) .. section .. old:sub(z + #END):gsub("^\n", "")
  else
    new = old .. ((old == "" or old:sub(-2) == "\n\n") and "" or (old:sub(-1) == "\n" and "\n" or "\n\n")) .. section
  end
  f = assert(io.open(path, "wb"))
  f:write(new)
  f:close()
end
