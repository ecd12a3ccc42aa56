// The contract test: Adobe's OpenAPI specifications (../shared/reference/openapi, never copied
// into the project) checked against a real `aep emulator` and against the requests aep's own
// client sends. Run by ctest (CMakeLists.txt, test `contract.openapi`), or by hand:
//   node tests/contract/run.mjs            check; exit 0 pass, 1 fail, 77 skipped (no specs)
//   node tests/contract/run.mjs --write    also rewrite docs/api-coverage.md (`./dev api-coverage`)
//                                          and drop fixed violations from known-violations.json
// Environment: AEP_BIN (default build/aep), AEP_OPENAPI_DIR (default ../shared/reference/openapi
// beside the checkout). What counts as a violation, and the two lists that excuse one, are in
// tests/contract/README.md.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const SPECS = process.env.AEP_OPENAPI_DIR || path.resolve(ROOT, "..", "shared", "reference", "openapi");
const AEP = process.env.AEP_BIN || path.join(ROOT, "build", "aep");
const COVERAGE = path.join(ROOT, "docs", "api-coverage.md");
const DIFFERENCES = path.join(HERE, "differences.json");
const KNOWN = path.join(HERE, "known-violations.json");
const SKIP = 77;
const WRITE = process.argv.includes("--write");

if (!fs.existsSync(SPECS) || !fs.readdirSync(SPECS).some((f) => f.endsWith(".yaml"))) {
  console.log(`contract: SKIPPED: no OpenAPI specifications in ${SPECS} (a development checkout has them ` +
    "beside it in ../shared/reference/openapi; set AEP_OPENAPI_DIR to point elsewhere)");
  process.exit(SKIP);
}
if (!fs.existsSync(AEP)) {
  console.error(`contract: ${AEP} does not exist: build it first (./dev build) or set AEP_BIN`);
  process.exit(1);
}

if (!fs.existsSync(path.join(HERE, "node_modules", "ajv"))) {
  console.error("contract: tests/contract/node_modules is missing: run `npm ci --prefix tests/contract` (./dev test does)");
  process.exit(1);
}
// Loaded once the checks above passed, so that a checkout without the specs skips cleanly.
const { loadSpecs, loadRaw, findOperation, checkResponse, checkRequest, requestExample } = await import("./openapi.mjs");
const { startEmulator, platformClient, runAep, requestLog, stopAll } = await import("./emulator.mjs");
const { setup, plan } = await import("./requests.mjs");
const { scopeOf, renderCoverage } = await import("./coverage.mjs");

const started = Date.now();
const { operations } = await loadSpecs(SPECS);
// The checker checks: answers and requests the specs forbid must be flagged (a checker that
// accepts everything would pass every run).
{
  const get = (k) => operations.find((o) => o.key === k);
  const cases = [
    [checkResponse(get("catalog.yaml GET /dataSets/{DATASET_ID}"), 200, "application/json", "[1]"), "body / must be object"],
    [checkResponse(get("identity-service.yaml GET /idnamespace/identities/{ID}"), 404, "application/json", '"x"'), "body / must be object"],
    [checkResponse(get("batch-ingestion.yaml POST /batches"), 418, "application/json", "{}"), "status  status 418 is not documented"],
    [checkResponse(get("batch-ingestion.yaml POST /batches"), 201, "text/plain", "x"), "content-type  Content-Type text/plain"],
    [checkRequest(get("batch-ingestion.yaml POST /batches/{batchId}"), { params: { batchId: "b" }, query: { action: "NOPE" } }),
     "query /action must be equal"],
    [checkRequest(get("data-prep.yaml GET /mappingSets"), { params: {}, query: { limit: "x", start: "0" } }),
     "query /limit must be integer"],
    [checkRequest(get("catalog.yaml GET /dataSets"), { params: {}, query: {}, headerNames: [] }),
     "header /x-sandbox-name required header is missing"],
  ];
  for (const [got, want] of cases) {
    if (!got.some((v) => `${v.kind} ${v.pointer} ${v.error}`.startsWith(want))) {
      console.error(`contract: the checker missed "${want}": ${JSON.stringify(got)}`);
      process.exit(1);
    }
  }
  if (checkRequest(get("data-prep.yaml GET /mappingSets"), { params: {}, query: { limit: "10", start: "0" } }).length) {
    console.error("contract: the checker flagged a valid request");
    process.exit(1);
  }
}
const raw = {};
const example = (op) => {
  raw[op.file] = raw[op.file] || loadRaw(SPECS, op.file);
  return requestExample(raw[op.file], op);
};

// A violation's key: stable across runs, so that the lists can name it. Ids the emulator made up
// (and array indexes) are replaced in pointers and messages.
let idValues = [];
function normalize(s) {
  let out = String(s);
  for (const v of idValues) if (v && v.length >= 6) out = out.split(v).join("{id}");
  return out.replace(/\b[0-9a-f]{24,}\b/g, "{id}")
    .replace(/\b[0-9A-HJKMNP-TV-Z]{26}\b/g, "{id}") // ULIDs (batch ids)
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, "{id}")
    .replace(/\/\d+(?=\/|$)/g, "/*");
}
const keyOf = (op, status, v) => normalize(`${op.key} | ${status} ${v.kind} ${v.pointer}: ${v.error}`);
const clientKeyOf = (op, v) => normalize(`client ${op.key} | ${v.kind} ${v.pointer}: ${v.error}`);

const results = new Map(); // op.key -> {op, answered, statuses:Set, violations: Map(key -> example)}
for (const op of operations) results.set(op.key, { op, answered: false, routed: false, statuses: new Set(), violations: new Map() });
const clientViolations = new Map();
const unmatched = [];

// The emulator's unknown-route answers: 404 "No route for ...", or 405 with Allow (the path has
// routes, not for this method). HEAD answers carry no body: a 404 is asked again as GET, which
// HEAD falls back to in the emulator's router.
async function isUnknownRoute(api, method, p, resp) {
  if (resp.status === 405 && resp.allow !== null) return true;
  if (method === "HEAD" && resp.status === 404) return isUnknownRoute(api, "GET", p, await api.request("GET", p));
  return resp.status === 404 && resp.json && /^No route for /.test(resp.json.detail || "");
}

// aep's own state (run manifests) goes to a directory of this run, never the user's.
const state = fs.mkdtempSync(path.join(os.tmpdir(), "aep-contract-state."));
// Stopped (ctest's timeout, ^C): the emulator and aep go too, never left behind.
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, async () => {
    await stopAll();
    fs.rmSync(state, { recursive: true, force: true });
    process.exit(1);
  });
}
const emu = await startEmulator(AEP, ROOT);
let failed = false;
try {
  // --- 1. The client's own requests: the whole workflow, then a few streamed records ----------
  const env = { XDG_STATE_HOME: state, NO_COLOR: "1" };
  const wf = await runAep(AEP, ["run", "realtime-import", "--env", emu.dataDir, "--wait", "30", "-q"], env, ROOT);
  if (wf.code !== 0) throw new Error(`aep run realtime-import failed (exit ${wf.code}):\n${wf.stdout}${wf.stderr}`);
  const records = JSON.parse(fs.readFileSync(path.join(ROOT, "data", "AEP_loyalty_profiles.json"), "utf8")).slice(0, 3);
  const input = path.join(state, "members.jsonl");
  fs.writeFileSync(input, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const st = await runAep(AEP, ["stream", "--env", emu.dataDir, "--dataset", "DATASET_ID_PROFILE",
    "--input", input, "--mapping", path.join(ROOT, "mappings", "loyalty_profile.lua"), "-q"], env, ROOT);
  if (st.code !== 0) throw new Error(`aep stream failed (exit ${st.code}):\n${st.stdout}${st.stderr}`);
  const log = await requestLog(emu, 0);
  let clientRequests = 0;
  for (const e of log) {
    if (/^\/(ims|emulator)\//.test(e.path)) continue;
    let found = findOperation(operations, e.method, e.raw_path || e.path);
    if (!found) {
      // A path parameter sent with its slashes unencoded (a schema $id) still names its operation.
      found = findOperation(operations, e.method, e.raw_path || e.path, true);
      if (!found) { unmatched.push(`${e.method} ${e.path}`); continue; }
      for (const [name, value] of Object.entries(found.params)) {
        if (value.includes("/")) {
          const k = clientKeyOf(found.op, { kind: "path", pointer: "/" + name, error: "not URL-encoded: the value's '/' split the path" });
          if (!clientViolations.has(k)) clientViolations.set(k, `${e.method} ${e.path}`);
        }
      }
    }
    clientRequests++;
    // The answer the workflow got: the same checks as the answers to this test's own requests.
    const r = results.get(found.op.key);
    const unknownRoute = (e.status === 404 && /"No route for /.test(e.response_body || "")) || e.status === 405;
    if (!unknownRoute) {
      r.answered = true;
      r.statuses.add(e.status);
      for (const v of checkResponse(found.op, e.status, e.response_content_type, e.response_body)) {
        const k = keyOf(found.op, e.status, v);
        if (!r.violations.has(k)) r.violations.set(k, `workflow: ${e.method} ${e.raw_path}${e.query ? "?" + e.query : ""}`);
      }
    }
    const query = {};
    for (const [k, v] of new URLSearchParams(e.query || "")) if (!(k in query)) query[k] = v;
    for (const v of checkRequest(found.op, { params: found.params, query, contentType: e.content_type, body: e.body,
                                           headerNames: e.header_names })) {
      const k = clientKeyOf(found.op, v);
      if (!clientViolations.has(k)) clientViolations.set(k, `${e.method} ${e.path}${e.query ? "?" + e.query : ""}`);
    }
  }
  // Without bodies in the log (an emulator that ignores AEP_EMULATOR_LOG_BODIES) nothing above
  // was really checked.
  if (!log.some((e) => e.method === "POST" && typeof e.body === "string" && e.body.length > 0) ||
      !log.some((e) => typeof e.response_body === "string" && e.response_body.length > 0) || clientRequests === 0) {
    throw new Error("the emulator's request log holds no request or answer bodies: the client's traffic was not checked");
  }
  const since = log.length ? log[log.length - 1].seq : 0;
  const clientSeconds = (Date.now() - started) / 1000;

  // --- 2. The emulator's answers: set-up, then every documented operation ----------------------
  const api = await platformClient(emu);
  let sent = 0;
  async function send(method, p, opts = {}, op = null, variant = "set-up") {
    const resp = await api.request(method, p, opts);
    sent++;
    const found = op ? { op } : findOperation(operations, method, p.split("?")[0]);
    if (!found) throw new Error(`contract: the set-up sent ${method} ${p}, which no spec documents`);
    const r = results.get(found.op.key);
    if (await isUnknownRoute(api, method, p, resp)) return resp;
    r.answered = true;
    r.statuses.add(resp.status);
    for (const v of checkResponse(found.op, resp.status, resp.contentType, resp.text)) {
      const k = keyOf(found.op, resp.status, v);
      if (!r.violations.has(k)) r.violations.set(k, `${variant}: ${method} ${p}`);
    }
    return resp;
  }
  const ids = await setup(api, send);
  idValues = Object.values(ids).filter((v) => typeof v === "string");
  for (const q of plan(operations, ids, example)) {
    let extra = q.headers;
    if (q.etagOf) {
      const r = await send("GET", q.etagOf);
      const etag = r.json && r.json.items && r.json.items[0] && r.json.items[0].etag;
      if (etag) extra = { ...extra, "If-Match": etag };
    }
    await send(q.method, q.path, { body: q.body, contentType: q.contentType, auth: q.auth, extra }, q.op, q.variant);
  }

  // --- 3. Compare with the lists ----------------------------------------------------------------
  const differences = JSON.parse(fs.readFileSync(DIFFERENCES, "utf8"));
  const known = JSON.parse(fs.readFileSync(KNOWN, "utf8"));
  const allowed = new Map(differences.allowed.map((d) => [d.violation, d]));
  const knownSet = new Set(known.violations);
  const observed = new Set([...clientViolations.keys()]);
  for (const r of results.values()) for (const k of r.violations.keys()) observed.add(k);
  const unlisted = [...observed].filter((k) => !allowed.has(k) && !knownSet.has(k)).sort();
  let fixed = [...knownSet].filter((k) => !observed.has(k)).sort();
  const stale = [...allowed.keys()].filter((k) => !observed.has(k)).sort();
  if (WRITE && fixed.length) {
    // The list only shrinks: --write drops the known violations that no longer occur.
    known.violations = known.violations.filter((k) => observed.has(k));
    fs.writeFileSync(KNOWN, JSON.stringify(known, null, 2) + "\n");
    for (const k of fixed) console.log(`contract: fixed, removed from tests/contract/known-violations.json: ${JSON.stringify(k)}`);
    fixed = [];
  }
  const both = [...knownSet].filter((k) => allowed.has(k));

  // --- 4. The coverage table ---------------------------------------------------------------------
  const rows = [];
  for (const r of results.values()) {
    const keys = [...r.violations.keys()];
    let status;
    if (!r.answered) status = "not implemented";
    else if (keys.some((k) => !allowed.has(k))) status = "known violation";
    else if (keys.length) status = "listed difference";
    else status = "conforming";
    rows.push({ op: r.op, status, scope: r.answered ? null : scopeOf(r.op), violations: keys.length,
                statuses: [...r.statuses].sort() });
  }
  const table = renderCoverage(rows, differences, known);
  const current = fs.existsSync(COVERAGE) ? fs.readFileSync(COVERAGE, "utf8") : "";
  if (WRITE) fs.writeFileSync(COVERAGE, table);

  // --- 5. Report -----------------------------------------------------------------------------------
  const count = (s) => rows.filter((r) => r.status === s).length;
  console.log(`contract: ${operations.length} operations: ${count("conforming")} conforming, ` +
    `${count("listed difference")} with listed differences, ${count("known violation")} with known violations, ` +
    `${count("not implemented")} not implemented (${rows.filter((r) => r.scope && r.scope.out).length} of them out of scope)`);
  console.log(`contract: ${sent} requests to the emulator; ${clientRequests} client requests and their answers checked ` +
    `(aep run realtime-import, aep stream); ${observed.size} distinct violations ` +
    `(${[...observed].filter((k) => allowed.has(k)).length} allowed, ${[...observed].filter((k) => knownSet.has(k)).length} known)`);
  const fail = (title, list, hint) => {
    if (!list.length) return;
    failed = true;
    console.log(`contract: FAIL: ${title} (${list.length}); ${hint}`);
    for (const k of list) {
      let where = clientViolations.get(k);
      if (!where) for (const r of results.values()) if (r.violations.has(k)) where = r.violations.get(k);
      console.log(`  ${JSON.stringify(k)}${where ? "\n      (" + where + ")" : ""}`);
    }
  };
  fail("violations listed nowhere", unlisted,
    "fix them, or list each in tests/contract/differences.json (with its reason and sources) or, " +
    "for a bug left for later, in tests/contract/known-violations.json");
  fail("known violations that no longer occur", fixed, "remove them from tests/contract/known-violations.json");
  fail("allowed differences that no longer occur", stale, "remove them from tests/contract/differences.json");
  fail("violations in both lists", both, "keep each in one list");
  fail("client requests to paths no spec documents", [...new Set(unmatched)].sort(), "the client must call documented operations only");
  if (!WRITE && current !== table) {
    failed = true;
    console.log("contract: FAIL: docs/api-coverage.md is stale: regenerate it with `./dev api-coverage` and commit it");
  } else if (WRITE) {
    console.log(`contract: wrote ${path.relative(ROOT, COVERAGE)}`);
  }
  console.log(`contract: ${failed ? "FAILED" : "passed"} in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
    `(specs loaded, emulator started and the client's workflow checked after ${clientSeconds.toFixed(1)} s)`);
} catch (err) {
  failed = true;
  console.error(`contract: ERROR: ${err.stack || err}\nemulator stderr:\n${emu.stderr()}`);
} finally {
  await emu.stop();
  if (!process.env.AEP_KEEP_TMP) fs.rmSync(state, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
