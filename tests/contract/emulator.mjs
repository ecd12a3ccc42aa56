// A real `aep emulator` for the contract tests (the start-up contract of docs/ARCHITECTURE.md:
// wait for its "ready" line), a Platform client for it, and runs of the aep client against it.
import { spawn, execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";

const READY_MS = 30000;

// Every process started here and every directory made, for stopAll() when the run is stopped.
const running = new Set();
const made = new Set();

// stopAll(): SIGTERM to every child still running, wait for them (5 s at most), remove the
// directories (a signal handler's last act).
export async function stopAll() {
  const exits = [];
  for (const child of running) {
    if (child.exitCode !== null) continue;
    exits.push(new Promise((r) => child.on("exit", r)));
    child.kill("SIGTERM");
  }
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
}

// startEmulator(aep) -> {url, dataDir, envFile, env, stop()}; the request log keeps bodies.
// cwd: the checkout, whose lua/ overrides the embedded copies (as when ctest runs specs).
export async function startEmulator(aep, cwd) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "aep-contract."));
  if (!process.env.AEP_KEEP_TMP) made.add(dataDir);
  const child = spawn(aep, ["emulator", "--port", "0", "--data-dir", dataDir], {
    cwd, env: { ...process.env, AEP_EMULATOR_LOG_BODIES: "1" }, stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  child.on("exit", () => running.delete(child));
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  const lines = readline.createInterface({ input: child.stdout });
  const emu = { dataDir, child, stderr: () => stderr };
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`emulator not ready after ${READY_MS} ms: ${stderr}`)), READY_MS);
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`emulator exited (${code}): ${stderr}`)); });
    lines.on("line", (line) => {
      let m;
      if ((m = line.match(/^aep emulator: environment file (.+)$/))) emu.envFile = m[1];
      if ((m = line.match(/^aep emulator: listening on (\S+)$/))) emu.url = m[1];
      if (line === "aep emulator: ready") { clearTimeout(timer); resolve(); }
    });
  });
  child.removeAllListeners("exit");
  const env = JSON.parse(fs.readFileSync(emu.envFile, "utf8"));
  emu.env = Object.fromEntries(env.values.map((v) => [v.key, v.value]));
  emu.stop = async () => {
    if (child.exitCode === null) {
      const done = new Promise((r) => child.on("exit", r));
      child.kill("SIGTERM");
      await done;
    }
    if (!process.env.AEP_KEEP_TMP) fs.rmSync(dataDir, { recursive: true, force: true });
  };
  return emu;
}

// A Platform client: every request with the collection's headers (STD), answers as
// {status, contentType, text, json}.
export async function platformClient(emu) {
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: emu.env.API_KEY,
    client_secret: emu.env.CLIENT_SECRET, scope: emu.env.SCOPES });
  const t = await fetch(emu.url + "/ims/token/v3", { method: "POST", body: form,
    headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  if (t.status !== 200) throw new Error(`token: ${t.status} ${await t.text()}`);
  const token = (await t.json()).access_token;
  const headers = { Authorization: "Bearer " + token, "x-api-key": emu.env.API_KEY,
    "x-gw-ims-org-id": emu.env.IMS_ORG, "x-sandbox-name": "prod" };
  return {
    tenant: emu.env.TENANT_ID, org: emu.env.IMS_ORG,
    async request(method, p, { body, contentType, accept, auth = true, extra } = {}) {
      const h = auth ? { ...headers } : {};
      if (accept) h.Accept = accept;
      if (body !== undefined) {
        h["Content-Type"] = contentType || "application/json";
        if (typeof body !== "string") body = JSON.stringify(body);
      }
      Object.assign(h, extra || {});
      const r = await fetch(emu.url + p, { method, headers: h, body });
      const text = method === "HEAD" ? "" : await r.text();
      let json;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      return { status: r.status, contentType: r.headers.get("content-type"), allow: r.headers.get("allow"), text, json };
    },
  };
}

// runAep(aep, args, env) -> {code, stdout, stderr}
export function runAep(aep, args, env, cwd) {
  return new Promise((resolve) => {
    const child = execFile(aep, args, { cwd, env: { ...process.env, ...env }, timeout: 60000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => { running.delete(child); resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }); });
    running.add(child);
  });
}

// requestLog(emu, since) -> the emulator's request log entries after `since`, page by page
// (whatever page size the emulator answers with; 1000 pages at most)
export async function requestLog(emu, since = 0) {
  const out = [];
  for (let page = 0; page < 1000; page++) {
    const r = await fetch(`${emu.url}/emulator/requests?since=${since}`);
    const { requests } = await r.json();
    if (!requests.length) break;
    out.push(...requests);
    since = requests[requests.length - 1].seq;
  }
  return out;
}
