-- Start-up: the native modules that link a library only some commands need are plugins loaded on
-- the first require (core/native_plugin.c), so `aep -e ''` maps none of those libraries; requiring
-- the module then loads them, and a library that cannot be loaded is named with its Debian package.
local run = require "tests.lua.support.run"

-- Lua run by a child aep: prints the shared objects the process maps, one per line, sorted.
local PRINT_MAPS = [[
local seen, names = {}, {}
for l in io.lines("/proc/self/maps") do
  local name = l:match("/([^/%s]+%.so[%.%d]*)$")
  if name and not seen[name] then seen[name] = true; names[#names + 1] = name end
end
table.sort(names)
io.write(table.concat(names, "\n"), "\n")
]]

-- The libraries of the plugins (CMakeLists.txt, AEP_MODULE_LIBS_<name>).
local PLUGIN_LIBS = {
  "librdkafka", "libmicrohttpd", "libsqlite3", "libpcre2", "libreadline", "libcurl", "libssl",
  "libcrypto", "libz",
}

local function mapped_plugin_libs(stdout)
  local found = {}
  for name in stdout:gmatch("[^\n]+") do
    for _, lib in ipairs(PLUGIN_LIBS) do
      if name:sub(1, #lib + 1) == lib .. "." or name:sub(1, #lib + 1) == lib .. "-" then
        found[#found + 1] = lib
      end
    end
  end
  table.sort(found)
  return found
end

describe("start-up", function()
  it("aep -e maps none of the plugins' libraries", function()
    local r = run.aep({ "-e", PRINT_MAPS })
    assert.are.equal("", r.stderr)
    assert.are.equal(0, r.status)
    assert.are.same({}, mapped_plugin_libs(r.stdout))
    assert.truthy(r.stdout:match("liblua5%.4%.so"))
  end)

  it("aep stream --help maps none of them but zlib (its file reader, aep.lines)", function()
    local r = run.aep({ "-e", "arg = {[0] = 'aep', 'stream', '--help'}; require('aep.cmd').dispatch({ 'stream', '--help' })" ..
      "; io.stdout:write('\\n--maps--\\n')" .. "; " .. PRINT_MAPS })
    assert.are.equal(0, r.status)
    local maps = r.stdout:match("\n%-%-maps%-%-\n(.*)$")
    assert.truthy(maps, r.stdout)
    assert.are.same({ "libz" }, mapped_plugin_libs(maps))
  end)

  it("requiring a module loads its library, once, and the module works", function()
    local code = [[
      local kafka, again = require "aep.kafka", nil
      package.loaded["aep.kafka"] = nil
      again = require "aep.kafka"
      local db = assert(require("aep.sqlite").open(":memory:"))
      db:exec("CREATE TABLE t (x)")
      assert(type(require("aep.server").listen) == "function")
      io.write(tostring(kafka.version():match("^%d+%.%d+") ~= nil), " ", tostring(rawequal(kafka, again)),
        " ", type(require("aep.regex").compile), "\n")
    ]]
    local r = run.aep({ "-e", code .. PRINT_MAPS })
    assert.are.equal("", r.stderr)
    assert.are.equal(0, r.status)
    assert.are.equal("true false function", r.stdout:match("^[^\n]*"))
    assert.are.same({ "libmicrohttpd", "libpcre2", "librdkafka", "libsqlite3" }, (function()
      local got = {}
      for _, lib in ipairs(mapped_plugin_libs(r.stdout)) do
        if lib ~= "libcrypto" and lib ~= "libssl" and lib ~= "libz" then got[#got + 1] = lib end
      end
      return got
    end)())
  end)

  it("aep --version and host.versions() load libcurl and OpenSSL to report them", function()
    local r = run.aep({ "--version" })
    assert.are.equal(0, r.status)
    local v = run.aep({ "-e", "local v = require('aep.host').versions(); io.write(v.curl, '|', v.openssl)" })
    assert.are.equal(0, v.status)
    local curl, openssl = v.stdout:match("^(.-)|(.*)$")
    assert.truthy(curl:match("^%d+%.%d+%.%d+"), v.stdout)
    assert.truthy(openssl:match("^OpenSSL %d"), v.stdout)
    assert.are.equal("libcurl " .. curl .. "\n" .. openssl .. "\n", r.stdout:match("\n(libcurl .*)$"))
  end)

  it("a library that cannot be loaded is named with its Debian package", function()
    local dir = run.tmpdir()
    -- an empty file where the dynamic loader looks first: it cannot be loaded
    local f = assert(io.open(dir .. "/librdkafka.so.1", "w"))
    f:close()
    local r = run.aep({ "-e", "require 'aep.kafka'" }, { env = { LD_LIBRARY_PATH = dir } })
    os.execute("rm -rf " .. run.quote(dir))
    assert.are.equal(1, r.status)
    assert.are.equal("aep: aep.kafka cannot be loaded: " .. dir ..
      "/librdkafka.so.1: file too short (it needs the Debian package(s) librdkafka1: apt-get install librdkafka1)\n",
      r.stderr)
  end)
end)
