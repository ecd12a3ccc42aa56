-- aep.sqlite: the emulator's store binding. Every database lives in a temp file removed after
-- the test (or in memory).
local sqlite = require "aep.sqlite"
local files = require "tests.lua.support.files"

local paths = {}
local function tmpdb()
  local path = os.tmpname()
  os.remove(path) -- let SQLite create it
  paths[#paths + 1] = path
  return path
end

describe("aep.sqlite", function()
  after_each(function()
    collectgarbage() -- close handles a failed test left open
    for _, p in ipairs(paths) do
      os.remove(p)
      os.remove(p .. "-wal")
      os.remove(p .. "-shm")
      os.remove(p .. "-journal")
    end
    paths = {}
  end)

  it("round-trips every type through a file database", function()
    local path = tmpdb()
    local db = assert(sqlite.open(path))
    db:exec([[CREATE TABLE t(id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB, x)]])
    local ins = db:prepare("INSERT INTO t(i, f, s, b, x) VALUES (?, ?, ?, ?, ?)")
    assert.equal(1, ins:run(42, 1.5, "héllo", "\0\1\255", nil))
    assert.equal(1, db:last_insert_rowid())
    assert.equal(1, ins:run(math.maxinteger, 2.0, "", "", true))
    assert.equal(1, ins:run(math.mininteger, -0.25, "x", nil, false))
    assert.equal(3, db:last_insert_rowid())
    db:close()

    db = assert(sqlite.open(path)) -- durable: read back through a new connection
    local sel = db:prepare("SELECT id, i, f, s, b, x FROM t ORDER BY id")
    local r = sel:step()
    assert.same({ 1, 42, 1.5, "héllo", "\0\1\255", n = 6 }, r)
    assert.equal("integer", math.type(r[2]))
    assert.equal("float", math.type(r[3]))
    r = sel:step()
    assert.same({ 2, math.maxinteger, 2.0, "", "", 1, n = 6 }, r)
    assert.equal("integer", math.type(r[2]))
    assert.equal("float", math.type(r[3])) -- 2.0 stays a float
    assert.equal("integer", math.type(r[6])) -- true is stored as 1
    r = sel:step()
    assert.same({ 3, math.mininteger, -0.25, "x", nil, 0, n = 6 }, r)
    assert.is_nil(sel:step())
    db:close()
  end)

  it("returns NULL columns as holes with the column count in row.n", function()
    local db = assert(sqlite.open(":memory:"))
    local r = db:prepare("SELECT NULL, 1, NULL, 'a', NULL"):first()
    assert.equal(5, r.n)
    assert.is_nil(r[1])
    assert.equal(1, r[2])
    assert.is_nil(r[3])
    assert.equal("a", r[4])
    assert.is_nil(r[5])
    assert.same({ n = 1 }, db:prepare("SELECT NULL"):first())
    assert.same({ "integer", "real", "text", "null", "integer", n = 5 },
      db:prepare("SELECT typeof(?), typeof(?), typeof(?), typeof(?), typeof(?)")
        :first(7, 7.5, "s", nil, false))
    db:close()
  end)

  it("stores values by type: blob literals come back as strings", function()
    local db = assert(sqlite.open(":memory:"))
    assert.same({ "\1\2\0", 3, n = 2 }, db:prepare("SELECT x'010200', length(x'010200')"):first())
    assert.same({ "text", "integer", "real", n = 3 },
      db:prepare("SELECT typeof(?), typeof(?), typeof(?)"):first("1", 1, 1.0))
    db:close()
  end)

  it("reuses prepared statements", function()
    local db = assert(sqlite.open(":memory:"))
    db:exec("CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)")
    local ins = db:prepare("INSERT INTO kv VALUES (?, ?)")
    for i = 1, 100 do assert.equal(1, ins:run("k" .. i, i)) end
    local get = db:prepare("SELECT v FROM kv WHERE k = ?")
    assert.same({ 7, n = 1 }, get:first("k7"))
    assert.same({ 99, n = 1 }, get:first("k99"))
    assert.is_nil(get:first("missing"))
    -- explicit bind / step / reset
    assert.equal(get, get:bind("k5"))
    assert.same({ 5, n = 1 }, get:step())
    assert.is_nil(get:step())
    get:reset()
    assert.same({ 5, n = 1 }, get:step()) -- reset keeps the bindings
    get:bind("k6")
    assert.same({ 6, n = 1 }, get:step())
    -- parameters not given are NULL, never stale values
    local upd = db:prepare("UPDATE kv SET v = ? WHERE k = ?")
    assert.equal(1, upd:run(1000, "k1"))
    assert.equal(1, db:changes())
    assert.equal(0, upd:run(1000))
    assert.equal(0, upd:run(1000, "nope"))
    assert.equal(100, db:prepare("SELECT count(*) FROM kv"):first()[1])
    assert.equal(3, db:prepare("UPDATE kv SET v = v + 1 WHERE v <= 4"):run())
    assert.equal(3, db:changes())
    assert.same({ "k", "v" }, db:prepare("SELECT k, v FROM kv"):columns())
    db:close()
  end)

  it("iterates rows with rows(...) and resets the statement after a break", function()
    local db = assert(sqlite.open(":memory:"))
    db:exec("CREATE TABLE n(i INTEGER)")
    local ins = db:prepare("INSERT INTO n VALUES (?)")
    for i = 1, 10 do ins:run(i) end
    local sel = db:prepare("SELECT i FROM n WHERE i > ? ORDER BY i")
    local got = {}
    for row in sel:rows(7) do got[#got + 1] = row[1] end
    assert.same({ 8, 9, 10 }, got)
    got = {}
    for row in sel:rows(0) do
      got[#got + 1] = row[1]
      if #got == 2 then break end
    end
    assert.same({ 1, 2 }, got)
    assert.same({ 1, n = 1 }, sel:step()) -- the break reset it
    got = {}
    for row in sel:rows(9) do got[#got + 1] = row[1] end
    assert.same({ 10 }, got)
    db:close()
  end)

  it("commits and rolls back transactions", function()
    local path = tmpdb()
    local db = assert(sqlite.open(path))
    db:exec("CREATE TABLE t(v INTEGER)")
    local ins = db:prepare("INSERT INTO t VALUES (?)")
    local count = db:prepare("SELECT count(*), coalesce(sum(v), 0) FROM t")
    db:exec("BEGIN")
    for i = 1, 1000 do ins:run(i) end
    db:exec("COMMIT")
    assert.same({ 1000, 500500, n = 2 }, count:first())
    db:exec("BEGIN")
    for i = 1, 50 do ins:run(i) end
    assert.same({ 1050, 501775, n = 2 }, count:first())
    db:exec("ROLLBACK")
    assert.same({ 1000, 500500, n = 2 }, count:first())
    db:close()
    db = assert(sqlite.open(path))
    assert.same({ 1000, 500500, n = 2 }, db:prepare("SELECT count(*), sum(v) FROM t"):first())
    db:close()
  end)

  it("turns WAL mode on", function()
    local path = tmpdb()
    local db = assert(sqlite.open(path))
    assert.same({ "wal", n = 1 }, db:prepare("PRAGMA journal_mode=WAL"):first())
    db:exec("PRAGMA synchronous=NORMAL; CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    assert.is_true(files.exists(path .. "-wal"))
    assert.equal(db, db:busy_timeout(5000))
    local other = assert(sqlite.open(path)) -- a second connection sees committed data
    assert.same({ 1, n = 1 }, other:prepare("SELECT x FROM t"):first())
    assert.same({ "wal", n = 1 }, other:prepare("PRAGMA journal_mode"):first())
    other:close()
    db:close()
  end)

  it("raises SQL errors with SQLite's message and stays usable", function()
    local db = assert(sqlite.open(":memory:"))
    assert.has_error(function() db:exec("SELEC 1") end, 'sqlite: near "SELEC": syntax error')
    assert.has_error(function() db:prepare("SELECT * FROM nope") end, "sqlite: no such table: nope")
    db:exec("CREATE TABLE u(id INTEGER PRIMARY KEY, s TEXT NOT NULL)")
    local ins = db:prepare("INSERT INTO u VALUES (?, ?)")
    ins:run(1, "a")
    assert.has_error(function() ins:run(1, "b") end, "sqlite: UNIQUE constraint failed: u.id")
    assert.has_error(function() ins:run(2, nil) end, "sqlite: NOT NULL constraint failed: u.s")
    assert.equal(1, ins:run(2, "b")) -- the statement was reset after the error
    assert.has_error(function() db:exec("COMMIT") end,
      "sqlite: cannot commit - no transaction is active")
    assert.equal(2, db:prepare("SELECT count(*) FROM u"):first()[1])
    db:close()
  end)

  it("raises on misuse", function()
    local db = assert(sqlite.open(":memory:"))
    local st = db:prepare("SELECT ?, ?")
    assert.has_error(function() st:bind(1, 2, 3) end, "sqlite: 3 values for 2 parameters")
    assert.has_error(function() st:run({}) end)
    assert.has_error(function() st:first(print) end)
    assert.has_error(function() db:prepare("SELECT 1; SELECT 2") end,
      "sqlite: prepare takes one statement; extra SQL: SELECT 2")
    assert.has_error(function() db:prepare("SELECT 1; -- note\n SELECT 2") end,
      "sqlite: prepare takes one statement; extra SQL: -- note\n SELECT 2")
    assert.same({ 1, n = 1 }, db:prepare("SELECT 1;"):first())
    assert.same({ 1, n = 1 }, db:prepare("SELECT 1; -- note\n ;; /* more */ "):first())
    assert.has_error(function() db:prepare("") end)
    assert.has_error(function() db:exec() end)
    assert.has_error(function() db:busy_timeout(-1) end)
    assert.has_error(function() sqlite.open() end)
    db:close()
  end)

  it("raises when a closed handle is used; close is idempotent", function()
    local db = assert(sqlite.open(":memory:"))
    local st = db:prepare("SELECT 1")
    local other = db:prepare("SELECT 2")
    other:close()
    other:close()
    assert.has_error(function() other:first() end, "sqlite: attempt to use a closed statement")
    db:close() -- finalizes st too
    db:close()
    assert.has_error(function() db:exec("SELECT 1") end, "sqlite: attempt to use a closed database")
    assert.has_error(function() db:prepare("SELECT 1") end, "sqlite: attempt to use a closed database")
    assert.has_error(function() db:last_insert_rowid() end, "sqlite: attempt to use a closed database")
    assert.has_error(function() st:step() end, "sqlite: attempt to use a closed statement")
    assert.has_error(function() st:rows() end, "sqlite: attempt to use a closed statement")
    st:close()
    assert.equal("aep.sqlite.Db (closed)", tostring(db))
    assert.equal("aep.sqlite.Stmt (closed)", tostring(st))
  end)

  it("closes handles with <close> and keeps a database alive while its statements live", function()
    local path = tmpdb()
    local escaped
    do
      local db <close> = assert(sqlite.open(path))
      escaped = db
      db:exec("CREATE TABLE t(x); INSERT INTO t VALUES (5)")
    end
    assert.has_error(function() escaped:exec("SELECT 1") end, "sqlite: attempt to use a closed database")

    local st = assert(sqlite.open(path)):prepare("SELECT x FROM t")
    collectgarbage()
    collectgarbage()
    assert.same({ 5, n = 1 }, st:first())
    st:close()
  end)

  it("returns nil, message, SQLITE when a database cannot be opened", function()
    local db, err, code = sqlite.open("/nonexistent-aep-dir/sub/x.db")
    assert.is_nil(db)
    assert.equal("SQLITE", code)
    assert.equal("sqlite: cannot open /nonexistent-aep-dir/sub/x.db: unable to open database file", err)
  end)
end)
