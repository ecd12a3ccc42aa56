// Browser tests of the emulator's web side, in Debian's chromium driven by playwright-core
// (never a downloaded browser). Run by tests/lua/browser_spec.lua, which starts an emulator,
// creates the loyalty schemas, datasets and inlet (tests/lua/support/fixtures.lua), streams the
// sample member's profile record, and passes:
//   AEP_EMU_URL   the emulator          AEP_ENV_FILE  its environment file (for a Platform token)
//   AEP_IDS       {"event_dataset","profile_dataset","inlet_id","tenant","org","member"}
//   AEP_ARTIFACTS where screenshots go (default tests/artifacts; not committed)
//   AEP_CHROMIUM  the browser (default /usr/bin/chromium)
// This script serves the demo page from a second origin (its own loopback HTTP server), so every
// event crosses origins as on a real site. Tests use node's built-in runner.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EMU = process.env.AEP_EMU_URL;
if (!EMU || !process.env.AEP_IDS || !process.env.AEP_ENV_FILE) {
  console.error("run.mjs: AEP_EMU_URL, AEP_ENV_FILE and AEP_IDS are required; run it through " +
    "tests/lua/browser_spec.lua (build/aep /usr/bin/busted --config-file=.busted tests/lua/browser_spec.lua)");
  process.exit(2);
}
const IDS = JSON.parse(process.env.AEP_IDS);
const MEMBER = IDS.member;
const TENANT = "_" + IDS.tenant;
const ARTIFACTS = process.env.AEP_ARTIFACTS || path.join(HERE, "..", "artifacts");
const CHROMIUM = process.env.AEP_CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const DEADLINE_MS = 20000; // how long to wait for something to happen (never asserted on)

let context, userDataDir, server, origin, token;

// ---- helpers ---------------------------------------------------------------------------------
async function emu(p, opts = {}) {
  const resp = await fetch(EMU + p, opts);
  const text = await resp.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: resp.status, body, headers: resp.headers };
}

function envValues() {
  const env = JSON.parse(fs.readFileSync(process.env.AEP_ENV_FILE, "utf8"));
  return Object.fromEntries(env.values.map((v) => [v.key, v.value]));
}

async function platform(p) {
  const env = envValues();
  return emu(p, { headers: { Authorization: "Bearer " + token, "x-api-key": env.API_KEY,
                             "x-gw-ims-org-id": env.IMS_ORG, "x-sandbox-name": "prod" } });
}

async function records(datasetId) {
  const r = await emu(`/emulator/datasets/${datasetId}/records?limit=10000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function memberEvents() {
  const q = new URLSearchParams({ "schema.name": "_xdm.context.experienceevent",
    "relatedSchema.name": "_xdm.context.profile", relatedEntityId: MEMBER, relatedEntityIdNS: "Email", limit: "1000" });
  const r = await platform("/data/core/ups/access/entities?" + q);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.children;
}

async function waitFor(fn, what) {
  const end = Date.now() + DEADLINE_MS;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("gave up waiting for " + what + (last !== undefined ? " (last: " + JSON.stringify(last) + ")" : ""));
}

async function requestSeq() {
  return (await emu("/emulator/requests?limit=1&since=" + Number.MAX_SAFE_INTEGER)).body.total;
}

async function requestsSince(seq, prefix) {
  const r = await emu(`/emulator/requests?since=${seq}&path=${encodeURIComponent(prefix)}`);
  return r.body.requests;
}

function watch(page) {
  const seen = { console: [], errors: [] };
  page.on("console", (m) => seen.console.push({ type: m.type(), text: m.text() }));
  page.on("pageerror", (e) => seen.errors.push(e.message));
  return seen;
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}

function demoUrl(extra = {}) {
  const q = new URLSearchParams({ dataset: IDS.event_dataset, inlet: IDS.inlet_id, next: origin + "/shop/next", ...extra });
  return origin + "/shop/demo?" + q;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// ---- setup -----------------------------------------------------------------------------------
before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), "no browser at " + CHROMIUM);
  const env = envValues();
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: env.API_KEY,
                                     client_secret: env.CLIENT_SECRET, scope: env.SCOPES || "" });
  const t = await emu("/ims/token/v3", { method: "POST", body: form,
                                        headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  assert.equal(t.status, 200, "token: " + JSON.stringify(t.body));
  token = t.body.access_token;

  // The second origin: a "shop" serving the emulator's demo page as its own, and a page to leave to.
  server = http.createServer(async (req, res) => {
    const u = new URL(req.url, "http://shop");
    if (u.pathname === "/shop/demo") {
      const r = await fetch(EMU + "/emulator/demo?" + u.searchParams);
      res.writeHead(r.status, { "Content-Type": "text/html; charset=utf-8" });
      res.end(await r.text());
    } else if (u.pathname === "/shop/next") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end("<!doctype html><title>Thanks</title><link rel=icon href='data:,'><p>You left the demo.</p>");
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("not found");
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  origin = "http://127.0.0.1:" + server.address().port;

  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "aep-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 860 },
  });
});

after(async () => {
  if (context) await context.close();
  if (server) server.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

// ---- tests -----------------------------------------------------------------------------------
test("the demo page, from another origin, sends clicked events into the dataset and onto the member's profile", async () => {
  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(demoUrl());
  assert.notEqual(new URL(page.url()).origin, new URL(EMU).origin, "the demo must come from another origin");
  const before = (await records(IDS.event_dataset)).count;

  await page.click("#earn-250");
  await page.click("#earn-1000");
  await page.click("#level-up");
  await page.waitForFunction(() => document.querySelectorAll("#log tr[data-status=ok]").length === 3);

  const after = await records(IDS.event_dataset);
  assert.equal(after.count, before + 3);
  const got = after.records.slice(before).map((r) => r.entity);
  assert.deepEqual(got.map((e) => [e.eventType, e[TENANT].pointsEarned, e[TENANT].totalPoints, e[TENANT].loyaltyLevel]), [
    ["loyaltyBalanceUpdate", 250, 241700, "Platinum"],
    ["loyaltyBalanceUpdate", 1000, 242700, "Platinum"],
    ["loyaltyLevelUpdate", 0, 242700, "Diamond"],
  ]);
  for (const e of got) {
    assert.equal(e[TENANT].loyaltyID, MEMBER);                      // from the data layer
    assert.match(e._id, UUID);                                      // filled in by the tag
    assert.match(e.timestamp, ISO);
    assert.match(e[TENANT].transactionID, /^web:\/shop\/demo:loyalty(Balance|Level)Update:/); // page URL
  }
  assert.ok(after.records.slice(before).every((r) => r.status === "success"));

  const events = await memberEvents();
  const onProfile = new Set(events.map((c) => c.entity._id));
  for (const e of got) assert.ok(onProfile.has(e._id), "event " + e._id + " is not on the profile");

  await shot(page, "demo-page.png");
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.console.filter((m) => m.type === "error"), []);
  await page.close();
});

test("events sent close together share one /collection/batch request (207)", async () => {
  const page = await context.newPage();
  await page.goto(demoUrl());
  const seq = await requestSeq();
  const results = await page.evaluate(() => Promise.all([5, 10, 15].map((n) =>
    window.demoTag.send("loyaltyBalanceUpdate", { points: n }).then((r) => ({ status: r.status, xactionId: r.xactionId })))));
  assert.deepEqual(results.map((r) => r.status), ["accepted", "accepted", "accepted"]);
  const batchId = results[0].xactionId.replace(/:0$/, "");
  assert.deepEqual(results.map((r) => r.xactionId), [batchId + ":0", batchId + ":1", batchId + ":2"]);
  const posts = (await requestsSince(seq, "/collection/")).filter((r) => r.method === "POST");
  assert.deepEqual(posts.map((r) => [r.path, r.status, r.messages]), [["/collection/batch/" + IDS.inlet_id, 207, 3]]);
  await page.close();
});

test("a rejected event shows AEP's message as a console error", async () => {
  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(demoUrl());
  const before = (await records(IDS.event_dataset)).count;
  await page.click("#invalid");
  const err = await waitFor(() => seen.console.find((m) => m.type === "error" && m.text.startsWith("aep-tag:")), "the tag's console error");
  assert.match(err.text, /^aep-tag: AEP rejected event "loyaltyLevelUpdate" \(_id [0-9a-f-]{36}, HTTP 400\): /);
  assert.ok(err.text.includes(`inletId: [${IDS.inlet_id}] imsOrgId: [${IDS.org}] Message is invalid`), err.text);
  assert.ok(err.text.includes(`/${TENANT}/loyaltyLevel`) && err.text.includes("Bronze"), err.text);
  await page.waitForSelector("#log tr[data-status=bad]");
  assert.match(await page.textContent("#log tr[data-status=bad] td:last-child"), /^rejected: Message is invalid/);
  assert.equal((await records(IDS.event_dataset)).count, before, "a rejected event is not stored");
  await shot(page, "demo-page-rejected.png");
  await page.close();
});

test("events sent just before navigating away still arrive (navigator.sendBeacon on page hide)", async () => {
  const page = await context.newPage();
  // A long batching wait: the event is still queued when the page goes, so only the page-hide
  // beacon can deliver it.
  await page.goto(demoUrl({ wait: "30000" }));
  await page.evaluate(() => {
    const orig = navigator.sendBeacon.bind(navigator);
    navigator.sendBeacon = (url, data) => {
      const ok = orig(url, data);
      const list = JSON.parse(sessionStorage.getItem("beacons") || "[]");
      list.push({ url, ok });
      sessionStorage.setItem("beacons", JSON.stringify(list));
      return ok;
    };
  });
  const before = (await records(IDS.event_dataset)).count;
  await Promise.all([page.waitForURL(origin + "/shop/next"), page.click("#leave")]);
  const beacons = JSON.parse(await page.evaluate(() => sessionStorage.getItem("beacons")));
  assert.deepEqual(beacons, [{ url: new URL(EMU).origin + "/collection/batch/" + IDS.inlet_id, ok: true }]);
  const after = await waitFor(async () => {
    const r = await records(IDS.event_dataset);
    return r.count > before ? r : null;
  }, "the beaconed event");
  assert.equal(after.count, before + 1);
  const e = after.records[after.count - 1].entity;
  assert.deepEqual([e.eventType, e[TENANT].pointsEarned, e[TENANT].loyaltyID], ["loyaltyBalanceUpdate", 50, MEMBER]);
  await page.close();
});

test("the tag retries a 503 with backoff while the page lives", async () => {
  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(demoUrl());
  await page.click("#earn-250");      // a first request (its CORS preflight is cached)
  await page.waitForSelector("#log tr[data-status=ok]");
  const before = (await records(IDS.event_dataset)).count;
  const seq = await requestSeq();
  const put = (spec) => emu("/emulator/faults", { method: "PUT", headers: { "Content-Type": "application/json" },
                                                 body: JSON.stringify({ spec }) });
  assert.equal((await put("/collection/batch:503=1,retry_after=1")).status, 200);
  try {
    await page.click("#earn-1000");
    const warn = await waitFor(() => seen.console.find((m) => m.type === "warning" && m.text.includes("HTTP 503")), "the retry warning");
    assert.match(warn.text, /^aep-tag: HTTP 503 from the inlet; retrying 1 event\(s\) in \d+ ms \(attempt 2 of 6\)$/);
  } finally {
    assert.equal((await put("")).status, 200);
  }
  await page.waitForFunction(() => document.querySelectorAll("#log tr[data-status=ok]").length === 2);
  assert.equal((await records(IDS.event_dataset)).count, before + 1);
  const posts = (await requestsSince(seq, "/collection/batch/")).filter((r) => r.method === "POST");
  assert.ok(posts.length >= 2, JSON.stringify(posts));
  assert.equal(posts[0].status, 503);
  assert.equal(posts[posts.length - 1].status, 207);
  await page.close();
});

test("the console lists the datasets, the records with their validation results, and shows a profile", async () => {
  // An invalid event sent without sync validation: DCS accepts it (207 with an xactionId), and it
  // lands in a failed batch with its violations, which the console shows as rejected.
  const demo = await context.newPage();
  await demo.goto(demoUrl());
  const r = await demo.evaluate((tenant) => window.demoTag.send("loyaltyLevelUpdate", { points: 0 },
    { xdm: { [tenant]: { loyaltyLevel: "Tin" } } }).then((x) => x.status), TENANT);
  assert.equal(r, "accepted");
  await demo.close();
  const failed = (await emu(`/emulator/datasets/${IDS.event_dataset}/records?status=failed`)).body;
  assert.equal(failed.count, 1);

  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(EMU + "/emulator/ui");
  await page.waitForSelector(`#datasets tr[data-dataset="${IDS.event_dataset}"]`);
  const ids = await page.$$eval("#datasets tbody tr", (trs) => trs.map((t) => t.dataset.dataset));
  assert.deepEqual(ids.sort(), [IDS.event_dataset, IDS.profile_dataset].sort());
  const count = (await emu(`/emulator/datasets/${IDS.event_dataset}/records?status=success`)).body.count;
  await page.waitForFunction(([id, n]) =>
    document.querySelector(`#datasets tr[data-dataset="${id}"] td[data-count=success]`).textContent === n.toLocaleString("en-US"),
  [IDS.event_dataset, count]);
  assert.equal(await page.textContent("#org"), IDS.org);
  await shot(page, "console-overview.png");

  await page.click("a[data-tab=records]");
  await page.waitForSelector("#records tr[data-status=rejected]");
  const rejected = await page.textContent("#records tr[data-status=rejected]");
  assert.ok(rejected.includes("Bronze") && rejected.includes("Message is invalid"), rejected);
  assert.ok(await page.$("#records tr[data-status=accepted]"));
  const failedRow = await page.textContent("#records tr[data-status=failed]");
  assert.ok(failedRow.includes("failed batch") && failedRow.includes("Tin"), failedRow);
  assert.equal(await page.textContent(`#datasets tr[data-dataset="${IDS.event_dataset}"] td[data-count=failed]`), "1");
  await shot(page, "console-records.png");

  await page.click("a[data-tab=schemas]");
  await page.waitForSelector("#schemas .card");
  await shot(page, "console-schemas.png");

  await page.click("a[data-tab=batches]");
  await page.waitForSelector("#batches tbody tr");
  const batchRow = await page.$$eval("#batches tbody tr", (trs) => trs.map((t) => [...t.cells].map((c) => c.textContent)));
  assert.deepEqual(batchRow.map((c) => [c[0], c[2], c[4], c[5], c[6]]), [[IDS.batch_id, "success", "25", "25", "0"]]);
  await shot(page, "console-batches.png");

  await page.click("a[data-tab=profile]");
  await page.fill("#profile-id", MEMBER);
  await page.click("#profile-form button");
  await page.waitForSelector("#profile:not([hidden]) #profile-events tbody tr");
  const events = await memberEvents();
  assert.equal(await page.$$eval("#profile-events tbody tr", (trs) => trs.length), events.length);
  assert.equal(await page.textContent("#profile-title"), "Timi Scrowby · " + MEMBER);
  const attrs = await page.textContent("#profile-attrs");
  assert.ok(attrs.includes(`${TENANT}.loyaltyID`) && attrs.includes(MEMBER), attrs);
  await shot(page, "console-profile.png");

  await page.fill("#profile-id", "nobody@example.com");
  await page.click("#profile-form button");
  await page.waitForSelector("#profile-error:not([hidden])");
  assert.match(await page.textContent("#profile-error"), /^No profile found.*nobody@example\.com/);
  await shot(page, "console-profile-not-found.png");

  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.console.filter((m) => m.type === "error" && !m.text.includes("404")), []);
  await page.close();
});
