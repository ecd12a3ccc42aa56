-- Fakes for the aep stream unit specs (stream_units_spec.lua, stream_pipeline_units_spec.lua):
-- numbered temp files, a fake clock, a scripted pool, 207 answers and a test envelope.
local cjson = require "cjson"
local run = require "tests.lua.support.run"
local files = require "tests.lua.support.files"

local M = {}

local dir = run.tmpdir()
local nfile = 0
local function path(ext)
  nfile = nfile + 1
  return dir .. "/f" .. nfile .. (ext or ".jsonl")
end
local function write(content, ext) return files.write(path(ext), content) end
local read, read_lines = files.read, files.json_lines

-- a fake clock
local function clock()
  local c = { t = 1000 }
  c.now = function() return c.t end
  c.sleep = function(s) c.t = c.t + s; return true end
  return c
end

-- A pool that answers each request with responder(req, n) -> response | nil, err, code
-- (n: the request's number in submission order)
local function fake_pool(responder)
  local p = { submitted = {}, queue = {} }
  function p:submit(req, ctx)
    self.submitted[#self.submitted + 1] = req
    self.queue[#self.queue + 1] = { req = req, ctx = ctx, n = #self.submitted }
  end
  function p:wait()
    local out = {}
    local q = self.queue
    self.queue = {}
    for _, item in ipairs(q) do
      local resp, err, code, resent = responder(item.req, item.n)
      out[#out + 1] = { context = item.ctx, response = resp, error = err, code = code, resent = resent }
    end
    return out
  end
  function p:pending() return #self.queue end
  function p:close() end
  return p
end

-- 207 answer accepting every message of a batch body
local function messages_of(req)
  local doc = cjson.decode(req.body)
  return doc.messages or { doc }
end
local function ok207(req)
  local rs = {}
  for i = 1, #messages_of(req) do rs[i] = { xactionId = "x:" .. i } end
  return { status = 207, headers = {}, body = cjson.encode({ responses = rs }) }
end

local function encoder(entity) return '{"header":{"d":1},"body":{"xdmEntity":' .. entity .. "}}" end

M.path, M.write, M.read, M.read_lines = path, write, read, read_lines
M.clock, M.fake_pool, M.messages_of, M.ok207, M.encoder = clock, fake_pool, messages_of, ok207, encoder

return M
