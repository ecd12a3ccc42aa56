// Adobe's OpenAPI specifications as a checker: loads every spec of the reference folder (YAML via
// `js-yaml`, YAML 1.2 core schema; the Swagger 2.0 one converted by `swagger2openapi`), lists their operations
// with the full path each is served at, and checks an answer (status documented, body against the
// response schema) or a request (path and query parameters, body) with Ajv (+ ajv-formats), which
// understands OpenAPI 3.0's `nullable`. Only glue here: no schema logic of our own.
import fs from "node:fs";
import path from "node:path";
import yaml from "js-yaml";
import converter from "swagger2openapi";
import Ajv from "ajv";
import addFormats from "ajv-formats";

export const METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];

// Example values are documentation, not schema: they carry keys such as "$id" that a JSON-Schema
// compiler would read as schema identifiers (schema-registry.yaml's union examples), so drop them.
// Property maps are walked by their values, so a property named "example" stays.
function stripExamples(node, inPropertyMap = false) {
  if (Array.isArray(node)) { node.forEach((n) => stripExamples(n)); return node; }
  if (!node || typeof node !== "object") return node;
  for (const key of Object.keys(node)) {
    if (!inPropertyMap && (key === "example" || key === "examples")) { delete node[key]; continue; }
    stripExamples(node[key], !inPropertyMap && (key === "properties" || key === "patternProperties"));
  }
  return node;
}

function pointerEscape(s) { return s.replace(/~/g, "~0").replace(/\//g, "~1"); }

// The path part of a spec's first `servers` entry ("//{environment}.adobe.io/data/core" ->
// "/data/core"; "https://dcs.adobedc.net/" -> "").
function basePath(doc) {
  const url = (doc.servers && doc.servers[0] && doc.servers[0].url) || "";
  const m = url.replace(/^[a-z]+:/i, "").match(/^\/\/[^/]*(\/.*)?$/);
  const p = m ? (m[1] || "") : url;
  return p.replace(/\/+$/, "");
}

// The object at a local JSON pointer ("#/a/b"); sandbox.yaml writes '/#components/...'.
function lookup(doc, ref) {
  return ref.replace(/^\/#/, "#/").replace(/^#\/?/, "").split("/")
    .reduce((o, k) => o && o[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
}

function resolveRef(doc, obj) {
  for (let n = 0; obj && obj.$ref && n < 10; n++) obj = lookup(doc, obj.$ref);
  return obj;
}

// A template as a regex; `loose`: a parameter may span slashes (a value sent unencoded).
// locate(doc, pointer) -> the pointer where the object at `pointer` really is, following $refs
// (a response or request body may be a $ref to components/).
function locate(doc, pointer) {
  let ptr = pointer;
  for (let n = 0; n < 10; n++) {
    const obj = lookup(doc, ptr);
    if (!obj || !obj.$ref) return ptr;
    ptr = obj.$ref.replace(/^\/#/, "#/");
  }
  return ptr;
}

function templateRegex(full, loose = false) {
  const names = [];
  const body = full.replace(/\/+$/, "").split("/").map((seg) => {
    if (/^\{[^}]+\}$/.test(seg)) { names.push(seg.slice(1, -1)); return loose ? "(.+?)" : "([^/]+)"; }
    return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }).join("/");
  return { regex: new RegExp("^" + body + "/?$"), names };
}

// loadSpecs(dir) -> { specs: [{file, doc, base, ajv}], operations: [op] }
// op: {file, method ("GET"), path (as the spec writes it), full (base + path), operationId,
//      key ("file METHOD path"), def (the operation object), params, literal (specificity)}
export async function loadSpecs(dir) {
  const specs = [];
  const operations = [];
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();
  for (const file of files) {
    const text = fs.readFileSync(path.join(dir, file), "utf8").replace(/'\/#components\//g, "'#/components/");
    let doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
    if (doc.swagger) doc = (await converter.convertObj(doc, { patch: true, warnOnly: true })).openapi;
    stripExamples(doc);
    const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, validateFormats: true });
    addFormats(ajv);
    ajv.addSchema(doc, file);
    // Parameters arrive as strings: a second instance coerces them to the documented type first.
    const params = new Ajv({ strict: false, allErrors: true, validateSchema: false, coerceTypes: "array" });
    addFormats(params);
    params.addSchema(doc, file);
    const base = basePath(doc);
    const spec = { file, doc, base, ajv, params };
    specs.push(spec);
    for (const [p, item] of Object.entries(doc.paths || {})) {
      for (const m of METHODS) {
        const def = item[m];
        if (!def) continue;
        const full = base + p;
        const { regex, names } = templateRegex(full);
        const looseRegex = templateRegex(full, true).regex;
        // Each parameter with the pointer of its schema (where it sits, or where its $ref leads).
        const located = (list, at) => (list || []).map((x, i) => {
          let ptr = `${at}/parameters/${i}`;
          let param = x;
          for (let n = 0; param && param.$ref && n < 10; n++) {
            ptr = param.$ref.replace(/^\/#/, "#/");
            param = resolveRef(doc, { $ref: ptr });
          }
          return param && { ...param, schemaPtr: ptr + "/schema" };
        }).filter(Boolean);
        const byKey = new Map();
        for (const prm of [...located(item.parameters, `#/paths/${pointerEscape(p)}`),
                           ...located(def.parameters, `#/paths/${pointerEscape(p)}/${m}`)]) {
          byKey.set(prm.in + " " + prm.name, prm);
        }
        const parameters = [...byKey.values()];
        operations.push({
          spec, file, method: m.toUpperCase(), path: p, full, operationId: def.operationId || "",
          key: `${file} ${m.toUpperCase()} ${p}`, def, regex, looseRegex, names, parameters,
          pointer: `#/paths/${pointerEscape(p)}/${m}`,
          literal: full.split("/").filter((s) => s && !s.startsWith("{")).length,
        });
      }
    }
  }
  return { specs, operations };
}

// findOperation(operations, method, rawPath) -> {op, params} | null. The most literal template
// wins (/tenant/unions before /{CONTAINER_ID}/...); HEAD is its own operation where documented.
// loose: let a parameter span slashes, to name the operation a badly encoded request meant.
export function findOperation(operations, method, rawPath, loose = false) {
  let best = null;
  for (const op of operations) {
    if (op.method !== method) continue;
    const m = rawPath.match(loose ? op.looseRegex : op.regex);
    if (!m) continue;
    if (!best || op.literal > best.op.literal) {
      const params = {};
      op.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
      best = { op, params };
    }
  }
  return best;
}

function mediaType(ct) { return (ct || "").split(";")[0].trim().toLowerCase(); }

// The documented media type an answer of content type `ct` is checked against.
function pickContent(content, ct) {
  const want = mediaType(ct);
  const entries = Object.entries(content || {});
  for (const [k, v] of entries) if (mediaType(k) === want) return [k, v];
  for (const [k, v] of entries) if (k === "*/*") return [k, v];
  return null;
}

function ajvErrors(errors, where) {
  const out = [];
  const seen = new Set();
  for (const e of errors || []) {
    const params = Object.keys(e.params || {}).length ? " " + JSON.stringify(e.params) : "";
    const v = { kind: where, pointer: e.instancePath || "/", error: `${e.message}${params}` };
    const k = v.pointer + " " + v.error;
    if (!seen.has(k)) { seen.add(k); out.push(v); }
  }
  return out;
}

function validatorFor(spec, pointer) {
  return spec.ajv.getSchema(`${spec.file}${pointer}`);
}

// checkResponse(op, status, contentType, bodyText) -> [violation]; a violation is
// {kind: "status" | "content-type" | "body", pointer, error}.
export function checkResponse(op, status, contentType, bodyText) {
  const responses = op.def.responses || {};
  const code = String(status);
  const key = code in responses ? code : (`${code[0]}XX` in responses ? `${code[0]}XX` : ("default" in responses ? "default" : null));
  if (!key) {
    return [{ kind: "status", pointer: "", error: `status ${code} is not documented (documented: ${Object.keys(responses).join(", ")})` }];
  }
  const resp = resolveRef(op.spec.doc, responses[key]) || {};
  const content = resp.content;
  const hasBody = bodyText !== undefined && bodyText !== "";
  if (!content || Object.keys(content).length === 0) return [];
  const documented = Object.keys(content).join(", ");
  if (!hasBody) {
    if (op.method === "HEAD") return [];
    return [{ kind: "body", pointer: "", error: `no body, where ${code} documents ${documented}` }];
  }
  const picked = pickContent(content, contentType);
  if (!picked) {
    const got = mediaType(contentType) || "(none)";
    return [{ kind: "content-type", pointer: "", error: `Content-Type ${got} is not documented for ${code} (documented: ${documented})` }];
  }
  const [ct, media] = picked;
  if (!media.schema) return [];
  if (!/json/.test(mediaType(ct))) return []; // text/csv, application/octet-stream: bytes, no schema to apply
  let body;
  try { body = JSON.parse(bodyText); } catch {
    return [{ kind: "body", pointer: "", error: `body is not JSON, where ${code} documents ${ct}` }];
  }
  const at = locate(op.spec.doc, `${op.pointer}/responses/${pointerEscape(key)}`);
  const validate = validatorFor(op.spec, `${at}/content/${pointerEscape(ct)}/schema`);
  if (!validate) throw new Error(`contract: no schema at ${op.file}${at}/content/${ct}/schema`);
  if (validate(body)) return [];
  return ajvErrors(validate.errors, "body");
}

const paramValidators = new Map();

// checkRequest(op, {params, query, contentType, body, headerNames}) -> [violation]: required
// headers present (when headerNames, lowercase, is given), path and query parameters against
// their schemas (required ones present), the body against the documented request body.
// query: an object of name -> value (first value) from the request's query string.
export function checkRequest(op, req) {
  const out = [];
  const doc = op.spec.doc;
  for (const param of op.parameters) {
    if (param.in === "header" && param.required && req.headerNames &&
        !req.headerNames.includes(param.name.toLowerCase())) {
      out.push({ kind: "header", pointer: "/" + param.name, error: "required header is missing" });
    }
    if (param.in !== "path" && param.in !== "query") continue;
    const value = (param.in === "path" ? req.params : req.query)[param.name];
    if (value === undefined) {
      if (param.required) out.push({ kind: param.in, pointer: "/" + param.name, error: "required parameter is missing" });
      continue;
    }
    if (!param.schema) continue;
    // Ajv coerces only values that sit inside an object: check {v: value} against {v: schema}.
    const ref = `${op.spec.file}${param.schemaPtr}`;
    let validate = paramValidators.get(ref);
    if (!validate) {
      validate = op.spec.params.compile({ type: "object", properties: { v: { $ref: ref } } });
      paramValidators.set(ref, validate);
    }
    if (!validate({ v: value })) {
      for (const e of ajvErrors(validate.errors, param.in)) {
        out.push({ ...e, pointer: "/" + param.name + e.pointer.replace(/^\/v/, "") });
      }
    }
  }
  const rb = resolveRef(doc, op.def.requestBody);
  const hasBody = req.body !== undefined && req.body !== null && req.body !== "";
  if (rb && rb.required && !hasBody) out.push({ kind: "request-body", pointer: "", error: "required request body is missing" });
  if (rb && hasBody && rb.content) {
    const picked = pickContent(rb.content, req.contentType);
    if (!picked) {
      const got = mediaType(req.contentType) || "(none)";
      out.push({ kind: "request-body", pointer: "",
                 error: `Content-Type ${got} is not documented (documented: ${Object.keys(rb.content).join(", ")})` });
    } else if (picked[1].schema && /json/.test(mediaType(picked[0]))) {
      let body;
      try { body = JSON.parse(req.body); } catch {
        out.push({ kind: "request-body", pointer: "", error: "body is not JSON" });
        return out;
      }
      const at = locate(doc, `${op.pointer}/requestBody`);
      const validate = validatorFor(op.spec, `${at}/content/${pointerEscape(picked[0])}/schema`);
      if (!validate) throw new Error(`contract: no schema at ${op.file}${at}/content/${picked[0]}/schema`);
      if (!validate(body)) out.push(...ajvErrors(validate.errors, "request-body"));
    }
  }
  return out;
}

// requestExample(rawDoc, op) -> [contentType, body text] from the documented request body's
// example, or null
export function requestExample(rawDoc, op) {
  const item = rawDoc && rawDoc.paths && rawDoc.paths[op.path];
  const def = item && item[op.method.toLowerCase()];
  if (!def) return null;
  const rb = resolveRef(rawDoc, def.requestBody);
  if (rb && rb.content) {
    for (const [ct, media] of Object.entries(rb.content)) {
      let ex = media.example;
      if (ex === undefined && media.examples) {
        const first = Object.values(media.examples)[0];
        ex = resolveRef(rawDoc, first);
        ex = ex && ex.value;
      }
      if (ex === undefined && media.schema) {
        const s = resolveRef(rawDoc, media.schema);
        ex = s && s.example;
      }
      if (ex !== undefined) return [ct, typeof ex === "string" ? ex : JSON.stringify(ex)];
    }
  }
  // Swagger 2.0: a body parameter
  for (const p of def.parameters || []) {
    const param = resolveRef(rawDoc, p);
    if (param && param.in === "body" && param.schema) {
      const s = resolveRef(rawDoc, param.schema);
      if (s && s.example !== undefined) return ["application/json", JSON.stringify(s.example)];
    }
  }
  return null;
}

// loadRaw(dir, file) -> the spec as written (examples kept), for request examples
export function loadRaw(dir, file) {
  const text = fs.readFileSync(path.join(dir, file), "utf8").replace(/'\/#components\//g, "'#/components/");
  return yaml.load(text, { schema: yaml.CORE_SCHEMA });
}
