// Adobe's Web SDK (@adobe/alloy, the npm package of tests/browser/package.json) in Debian's
// chromium against the emulator's Edge Network. Run by tests/lua/browser_spec.lua, which starts an
// emulator over HTTPS (alloy only speaks https; a self-signed certificate made by
// aep.crypto.generate_rsa, trusted by node through NODE_EXTRA_CA_CERTS and ignored by chromium),
// creates the loyalty schemas, a Web SDK event schema (the loyalty field group plus the standard
// field groups alloy fills), a datastream, and streams the member's profile record; it passes:
//   AEP_EMU_URL, AEP_ENV_FILE, AEP_ARTIFACTS, AEP_CHROMIUM as for run.mjs
//   AEP_IDS  {"web_dataset", "consent_dataset", "datastream", "tenant", "org", "member"}
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EMU = process.env.AEP_EMU_URL;
if (!EMU || !process.env.AEP_IDS || !process.env.AEP_ENV_FILE) {
  console.error("websdk.mjs: AEP_EMU_URL, AEP_ENV_FILE and AEP_IDS are required; run it through " +
    "tests/lua/browser_spec.lua");
  process.exit(2);
}
const IDS = JSON.parse(process.env.AEP_IDS);
const TENANT = "_" + IDS.tenant;
const ARTIFACTS = process.env.AEP_ARTIFACTS || path.join(HERE, "..", "artifacts");
const CHROMIUM = process.env.AEP_CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--ignore-certificate-errors"];
const DEADLINE_MS = 20000; // how long to wait for something to happen (never asserted on)
const IDENTITY_COOKIE = "kndctr_" + IDS.org.replace("@", "_") + "_identity";
const CONSENT_COOKIE = "kndctr_" + IDS.org.replace("@", "_") + "_consent";

let context, userDataDir, token;

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

async function records(status) {
  const r = await emu(`/emulator/datasets/${IDS.web_dataset}/records?limit=10000` + (status ? "&status=" + status : ""));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
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

async function requestsSince(seq) {
  const r = await emu(`/emulator/requests?since=${seq}&path=${encodeURIComponent("/ee/")}`);
  return r.body.requests;
}

async function requestSeq() {
  return (await emu("/emulator/requests?limit=1&since=" + Number.MAX_SAFE_INTEGER)).body.total;
}

function watch(page) {
  const seen = { errors: [], consoleErrors: [] };
  page.on("pageerror", (e) => seen.errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") seen.consoleErrors.push(m.text()); });
  return seen;
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}

const demoUrl = () => EMU + "/emulator/demo/websdk?datastream=" + encodeURIComponent(IDS.datastream);

async function ecidCookie() {
  const c = (await context.cookies(EMU)).find((x) => x.name === IDENTITY_COOKIE);
  return c && c.value;
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), "no browser at " + CHROMIUM);
  const env = envValues();
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: env.API_KEY,
                                     client_secret: env.CLIENT_SECRET, scope: env.SCOPES || "" });
  const t = await emu("/ims/token/v3", { method: "POST", body: form,
                                        headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  assert.equal(t.status, 200, "token: " + JSON.stringify(t.body));
  token = t.body.access_token;
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "aep-chromium-"));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 860 },
    ignoreHTTPSErrors: true,
  });
});

after(async () => {
  if (context) await context.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

let ecid;

test("alloy configures against the emulator; sendEvent reaches the dataset with the XDM alloy produced", async () => {
  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(demoUrl());
  ecid = await page.evaluate(() => window.demo.ready);
  assert.match(ecid, /^\d{38}$/);
  assert.ok(await ecidCookie(), "the kndctr identity cookie is set");

  await page.click("#earn-250");
  await page.click("#earn-1000");
  await page.waitForFunction(() => document.querySelectorAll("#log tr[data-status=ok]").length === 2);
  const got = await waitFor(async () => { const r = await records("success"); return r.count >= 2 && r; }, "2 records");
  assert.equal(got.count, 2);
  const events = got.records.map((r) => r.entity);
  assert.deepEqual(events.map((e) => [e.eventType, e[TENANT].pointsEarned, e[TENANT].totalPoints]).sort(),
    [["loyaltyBalanceUpdate", 1000, 242700], ["loyaltyBalanceUpdate", 250, 241700]]);
  for (const e of events) {
    assert.equal(e[TENANT].loyaltyID, IDS.member);
    assert.deepEqual(e.identityMap.ECID, [{ id: ecid, authenticatedState: "ambiguous", primary: true }]);
    // what alloy collects by itself
    assert.equal(e.web.webPageDetails.URL, demoUrl());
    assert.equal(e.implementationDetails.name, "https://ns.adobe.com/experience/alloy");
    assert.match(e.implementationDetails.version, /^\d+\.\d+\.\d+/);
    assert.equal(e.implementationDetails.environment, "browser");
    assert.equal(e.environment.type, "browser");
    assert.equal(e.environment.browserDetails.viewportWidth, 1280);
    assert.equal(typeof e.device.screenWidth, "number");
    assert.match(e.placeContext.localTime, /^\d{4}-\d\d-\d\dT/);
    assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof e._id, "string");
  }
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.consoleErrors, []);
  await shot(page, "websdk-demo.png");
  await page.close();
});

test("the ECID stays the same across page loads, and a profile lookup by ECID returns the person", async () => {
  const page = await context.newPage();
  await page.goto(demoUrl());
  assert.equal(await page.evaluate(() => window.demo.ready), ecid);
  await page.reload();
  assert.equal(await page.evaluate(() => window.demo.ready), ecid);
  await page.close();
  const q = new URLSearchParams({ "schema.name": "_xdm.context.profile", entityId: ecid, entityIdNS: "ECID" });
  const r = await waitFor(async () => { const x = await platform("/data/core/ups/access/entities?" + q); return x.status === 200 && x; }, "the profile");
  const entity = Object.values(r.body)[0].entity;
  assert.equal(entity.person.name.firstName, "Timi");
  assert.equal(entity[TENANT].loyaltyID, IDS.member);
});

test("leaving the page sends with sendBeacon through /ee/.../v1/collect", async () => {
  const page = await context.newPage();
  await page.goto(demoUrl());
  await page.evaluate(() => window.demo.ready);
  const before = (await records()).count;
  const seq = await requestSeq();
  await Promise.all([page.waitForURL(/\/emulator\/ui/), page.click("#leave")]);
  const reqs = await waitFor(async () => (await requestsSince(seq)).filter((x) => /\/v1\/collect$/.test(x.path)).length && await requestsSince(seq), "the beacon");
  const beacon = reqs.filter((x) => /\/v1\/collect$/.test(x.path));
  assert.equal(beacon.length, 1);
  assert.equal(beacon[0].method, "POST");
  assert.equal(beacon[0].status, 204);
  const got = await waitFor(async () => { const r = await records(); return r.count === before + 1 && r; }, "the beaconed record");
  assert.equal(got.records[got.count - 1].entity[TENANT].pointsEarned, 50);
  await page.close();
});

test("setConsent out stops collection; in resumes it", async () => {
  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(demoUrl());
  await page.evaluate(() => window.demo.ready);
  const before = (await records()).count;
  await page.evaluate(() => window.demo.consent("out"));
  const c = (await context.cookies(EMU)).find((x) => x.name === CONSENT_COOKIE);
  assert.equal(c && c.value, "general=out");
  // Declined consent: alloy resolves sendEvent without sending anything
  let seq = await requestSeq();
  await page.evaluate(() => window.demo.send("loyaltyBalanceUpdate", 5));
  assert.deepEqual((await requestsSince(seq)).filter((x) => /\/interact$/.test(x.path)), []);
  // the Edge Network drops what a visitor who declined still sends (the consent cookie travels
  // in meta.state.entries, as alloy sends cookies to another domain)
  const dropped = await page.evaluate(async ({ cookie, ds }) => {
    const body = { events: [{ xdm: { eventType: "loyaltyBalanceUpdate", timestamp: new Date().toISOString() } }],
                   meta: { state: { entries: [{ key: cookie, value: "general=out" }] } } };
    const r = await fetch("/ee/v1/interact?configId=" + ds, { method: "POST", body: JSON.stringify(body) });
    return r.status;
  }, { cookie: CONSENT_COOKIE, ds: IDS.datastream });
  assert.equal(dropped, 200);
  await page.evaluate(() => window.demo.consent("in"));
  seq = await requestSeq();
  await page.evaluate(() => window.demo.send("loyaltyBalanceUpdate", 7));
  assert.equal((await requestsSince(seq)).filter((x) => /\/interact$/.test(x.path)).length, 1);
  const got = await waitFor(async () => { const r = await records(); return r.count === before + 1 && r; }, "one record");
  assert.equal(got.count, before + 1);
  assert.equal(got.records[got.count - 1].entity[TENANT].pointsEarned, 7);
  assert.deepEqual(seen.errors, []);
  await page.close();
});

test("setConsent with the Adobe 2.0 standard writes the consents to the datastream's profile dataset", async () => {
  const page = await context.newPage();
  const seen = watch(page);
  await page.goto(demoUrl());
  const id = await page.evaluate(() => window.demo.ready);
  const consents = { collect: { val: "y" }, personalize: { content: { val: "n" } },
                     metadata: { time: "2024-03-01T10:00:00+00:00" } };
  await page.evaluate(({ value, member }) => window.alloy("setConsent", {
    consent: [{ standard: "Adobe", version: "2.0", value }],
    identityMap: { Email: [{ id: member, authenticatedState: "authenticated", primary: true }] },
  }), { value: consents, member: IDS.member });
  const got = await waitFor(async () => {
    const r = await emu(`/emulator/datasets/${IDS.consent_dataset}/records`);
    return r.status === 200 && r.body.count >= 1 && r.body;
  }, "the consent record");
  assert.equal(got.count, 1);
  assert.equal(got.records[0].status, "success", JSON.stringify(got.records[0].errors));
  const entity = got.records[0].entity;
  assert.deepEqual(entity.consents, consents);
  assert.deepEqual(entity.identityMap.Email, [{ id: IDS.member, authenticatedState: "authenticated", primary: true }]);
  assert.deepEqual(entity.identityMap.ECID.map((x) => x.id), [id]);
  assert.deepEqual(seen.errors, []);
  await page.close();
});

test("an event outside the schema is accepted by the Edge Network and lands in the dataset's failed batch", async () => {
  const page = await context.newPage();
  await page.goto(demoUrl());
  await page.evaluate(() => window.demo.ready);
  const before = (await records("failed")).count;
  await page.click("#invalid");
  await page.waitForFunction(() => document.querySelectorAll("#log tr[data-status=ok]").length === 1);
  const got = await waitFor(async () => { const r = await records("failed"); return r.count === before + 1 && r; }, "the failed record");
  const rec = got.records[got.count - 1];
  assert.equal(rec.entity[TENANT].loyaltyLevel, "Bronze");
  assert.match(JSON.stringify(rec.errors), /Bronze is not a valid enum value/);
  await page.close();
});

test("the console lists the datastream and shows the Web SDK events", async () => {
  const page = await context.newPage();
  await page.goto(EMU + "/emulator/ui#overview");
  await page.waitForSelector("#datastreams tbody tr");
  assert.match(await page.textContent("#datastreams tbody"), new RegExp(IDS.datastream));
  await shot(page, "websdk-console-overview.png");
  await page.goto(EMU + "/emulator/ui#records");
  await page.waitForFunction(() => document.body.innerText.includes("loyaltyBalanceUpdate"));
  await shot(page, "websdk-console-records.png");
  await page.close();
});
