-- aep.errors: the error objects aep raises, in one leaf module that aep.platform, aep.ims,
-- aep.config and the commands share (so none of them needs another for its errors).
--
-- Three kinds of value are raised:
--   error objects (errors.new): kind, status, code, title, detail, report, violations, request;
--     tostring gives the one-line message users see (secrets redacted);
--   configuration errors (errors.config): code CONFIG, tostring is the message alone;
--   usage errors (errors.usage_error): the command line is wrong; the dispatcher prints them
--     with the command's usage and exits 64.
-- Ctrl-C raises the string "interrupted" (core/main.c); errors.is_interrupt recognises it.
local log = require "aep.log"

local M = {}


local Error = {}
Error.__index = Error
-- errors.Error: the metatable of every error object (kind, status, code, title, detail, ...)
M.Error = Error

local function one_line(s)
  return (tostring(s):gsub("%s*\n%s*", " "))
end

Error.__tostring = function(e)
  local parts = {}
  if e.step then parts[#parts + 1] = "step '" .. e.step .. "': " end
  if e.request then parts[#parts + 1] = e.request.method .. " " .. e.request.url .. ": " end
  if e.kind == "http" or e.status then
    local head = tostring(e.status or "")
    if e.code and tostring(e.code) ~= tostring(e.status) then head = head .. " " .. tostring(e.code) end
    parts[#parts + 1] = head
    local text = e.title
    if e.detail and e.detail ~= e.title then
      text = text and (text .. ": " .. e.detail) or e.detail
    end
    if text then parts[#parts + 1] = " " .. one_line(text) end
  else
    if e.code then parts[#parts + 1] = tostring(e.code) .. ": " end
    parts[#parts + 1] = one_line(e.message or e.title or "error")
  end
  local s = table.concat(parts)
  if e.violations and #e.violations > 0 then
    local lines = { s }
    for i, v in ipairs(e.violations) do
      if i > 10 then
        lines[#lines + 1] = string.format("  ... and %d more", #e.violations - 10)
        break
      end
      lines[#lines + 1] = "  - " .. (v.path and (v.path .. ": ") or "") .. one_line(v.message or "")
        .. (v.keyword and (" (" .. v.keyword .. ")") or "")
    end
    s = table.concat(lines, "\n")
  end
  if e.hint then s = s .. "\n" .. e.hint end
  return log.redact(s)
end

-- errors.new(fields) -> error object (platform.error)
function M.new(fields)
  return setmetatable(fields, Error)
end

-- errors.is_error(v) -> true when v is an error object of this module (platform.is_error)
function M.is_error(v)
  return getmetatable(v) == Error
end

local config_error_mt = { __tostring = function(e) return e.message end }

-- errors.config(message) -> a configuration error (table with __tostring, code CONFIG)
function M.config(message)
  return setmetatable({ message = message, code = "CONFIG", kind = "config" }, config_error_mt)
end

local usage_error_mt = {
  __tostring = function(e) return e.message end,
}

-- errors.usage_error(message): raise an error that the dispatcher prints with the command's usage.
function M.usage_error(message)
  error(setmetatable({ message = message, usage_error = true }, usage_error_mt), 0)
end

-- errors.is_interrupt(err) -> true for the error Ctrl-C raises ("interrupted", core/main.c), which
-- commands pass on instead of reporting it as a failure
function M.is_interrupt(e)
  return type(e) == "string" and e:match("interrupted$") ~= nil
end

return M
