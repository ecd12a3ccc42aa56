/*!
 * aep-tag.js: send XDM experience events from a web page to an Adobe Experience Platform
 * streaming inlet (the Data Collection Service, DCS). No dependencies, no build step.
 *
 * The same file is served by `aep emulator` at /emulator/web/aep-tag.js and shipped in the
 * repository as web/aep-tag.js for use on real sites.
 *
 *   <script src="aep-tag.js"></script>
 *   <script>
 *     var tag = aepTag.create({
 *       inletUrl: "https://dcs.adobedc.net/collection/INLET_ID",
 *       datasetId: "DATASET_ID",
 *       schemaId: "https://ns.adobe.com/TENANT/schemas/SCHEMA_ID",
 *       imsOrgId: "ORG@AdobeOrg",
 *       flowId: "FLOW_ID",                      // when the inlet has a dataflow
 *       dataLayer: "digitalData",               // a global's name, an object or a function
 *       mapping: {                              // XDM path <- data element
 *         "_tenant.loyaltyID":    { dataLayer: "member.email" },
 *         "_tenant.loyaltyLevel": { selector: "#member", attribute: "data-level" },
 *         "_tenant.pointsEarned": { data: "points", type: "integer" },
 *         "_tenant.transactionID": function (c) { return c.eventType + "-" + Date.now(); }
 *       }
 *     });
 *     tag.send("loyaltyBalanceUpdate", { points: 500 });
 *   </script>
 *
 * Data elements (like the Launch extension's): { dataLayer: "a.b" } (the data layer),
 * { data: "a.b" } (the object given to send), { selector: "css", attribute: "name" } or
 * { selector: "css", property: "textContent" } (an element; without selector, the element given
 * as options.element, e.g. the clicked button), { page: "url" | "title" | "path" | "hostname" |
 * "referrer" | "language" }, { query: "name" } (a URL query parameter), { value: constant }, or
 * a function(context) -> value. Options on any of them: type ("string" | "integer" | "number" |
 * "boolean"), default. A value that is undefined, null or "" leaves the field out.
 *
 * Delivery: events sent close together go out in one /collection/batch request (207: one answer
 * per event); retries with exponential backoff (honouring Retry-After) on 429, 5xx and network
 * errors while the page lives; a batch answered 413 is split. When the page is hidden or left,
 * what is still queued goes out with navigator.sendBeacon so it is not lost. A rejected event is
 * reported with console.error, with AEP's own message. syncValidation: true (or per send) sends
 * each event alone with ?syncValidation=true, so schema violations are answered at once (AEP
 * limits this to 60 requests a minute: it is for debugging).
 */
(function (global) {
  "use strict";

  var VERSION = "1.0.0";
  var CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1";
  var DEFAULTS = {
    batchSize: 50,          // events per batch request
    batchWaitMs: 100,       // how long an event waits for others to share its request
    maxBytes: 900000,       // DCS refuses requests over 1 MB (413)
    beaconBytes: 60000,     // sendBeacon's queue is limited to 64 KiB per page
    retries: 5,             // attempts after the first one, for 429/5xx/network errors
    backoffMs: 500,
    maxBackoffMs: 30000,
    syncValidation: false,
    keepalive: true         // fetch(..., {keepalive}) so a request in flight survives navigation
  };

  function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

  function getPath(obj, path) {
    if (path === undefined || path === null || path === "") return obj;
    var parts = String(path).split(".");
    var cur = obj;
    for (var i = 0; i < parts.length; i++) {
      if (cur === undefined || cur === null) return undefined;
      var p = parts[i];
      var m = /^(.*)\[(\d+)\]$/.exec(p);
      if (m) { cur = m[1] ? cur[m[1]] : cur; cur = cur === undefined || cur === null ? undefined : cur[Number(m[2])]; }
      else cur = cur[p];
    }
    return cur;
  }

  // setPath(obj, "a.b.c", v) or "/a/b/c": creates the objects on the way
  function setPath(obj, path, value) {
    var parts = String(path).replace(/^\//, "").split(/[./]/);
    var cur = obj;
    for (var i = 0; i < parts.length - 1; i++) {
      if (!isObject(cur[parts[i]])) cur[parts[i]] = {};
      cur = cur[parts[i]];
    }
    cur[parts[parts.length - 1]] = value;
  }

  function deepMerge(dst, src) {
    for (var k in src) {
      if (!Object.prototype.hasOwnProperty.call(src, k)) continue;
      if (isObject(src[k]) && isObject(dst[k])) deepMerge(dst[k], src[k]);
      else dst[k] = src[k];
    }
    return dst;
  }

  function uuid() {
    var c = global.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = "";
    for (var j = 0; j < 16; j++) h += (b[j] + 0x100).toString(16).slice(1);
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function convert(v, type) {
    if (v === undefined || v === null || type === undefined) return v;
    switch (type) {
      case "string": return String(v);
      case "integer": { var n = typeof v === "number" ? v : parseInt(String(v).replace(/[\s,]/g, ""), 10);
                        return isFinite(n) ? Math.trunc(n) : undefined; }
      case "number": { var f = typeof v === "number" ? v : parseFloat(String(v).replace(/[\s,]/g, ""));
                       return isFinite(f) ? f : undefined; }
      case "boolean": return v === true || v === "true" || v === "1" || v === 1;
      default: return v;
    }
  }

  // batch URL of an inlet URL: .../collection/ID -> .../collection/batch/ID
  function batchUrlOf(inletUrl) {
    var m = /^(.*\/collection)\/([^\/?#]+)\/?([?#].*)?$/.exec(inletUrl);
    if (!m) throw new Error("aep-tag: inletUrl must end in /collection/INLET_ID: " + inletUrl);
    return m[1] + "/batch/" + m[2];
  }

  function AepTag(config) {
    if (!isObject(config)) throw new TypeError("aep-tag: create(config) needs a configuration object");
    ["inletUrl", "datasetId", "schemaId"].forEach(function (k) {
      if (!config[k]) throw new TypeError("aep-tag: config." + k + " is required");
    });
    this.config = {};
    for (var k in DEFAULTS) this.config[k] = DEFAULTS[k];
    for (var c in config) this.config[c] = config[c];
    this.inletUrl = String(config.inletUrl).replace(/[?#].*$/, "").replace(/\/$/, "");
    this.batchUrl = batchUrlOf(this.inletUrl);
    this.log = config.logger || global.console;
    this.queue = [];          // events waiting to be sent: {message, resolve, attempt, size}
    this.inFlight = false;
    this.timer = null;
    this.retryAt = 0;
    this.stats = { sent: 0, accepted: 0, rejected: 0, failed: 0, retried: 0, beaconed: 0 };
    this._hooks();
  }

  AepTag.prototype._hooks = function () {
    var self = this;
    if (!global.addEventListener) return;
    this._onHide = function (e) {
      if (e.type === "visibilitychange" && global.document && global.document.visibilityState !== "hidden") return;
      self._beacon();
    };
    global.addEventListener("pagehide", this._onHide);
    if (global.document) global.document.addEventListener("visibilitychange", this._onHide);
  };

  // tag.dataLayer() -> the data layer object
  AepTag.prototype.dataLayer = function () {
    var dl = this.config.dataLayer;
    if (typeof dl === "function") return dl();
    if (typeof dl === "string") return getPath(global, dl);
    return dl;
  };

  AepTag.prototype._element = function (spec, ctx) {
    if (spec.selector) return global.document ? global.document.querySelector(spec.selector) : null;
    return ctx.element || null;
  };

  // tag.resolve(dataElement, context) -> value
  AepTag.prototype.resolve = function (spec, ctx) {
    var v;
    if (typeof spec === "function") return spec(ctx);
    if (!isObject(spec)) return spec;
    if ("value" in spec) v = spec.value;
    else if ("dataLayer" in spec) v = getPath(ctx.dataLayer, spec.dataLayer);
    else if ("data" in spec) v = getPath(ctx.data, spec.data);
    else if ("page" in spec) {
      var loc = global.location || {}, doc = global.document || {};
      v = { url: loc.href, path: loc.pathname, hostname: loc.hostname, title: doc.title,
            referrer: doc.referrer, language: doc.documentElement && doc.documentElement.lang }[spec.page];
    } else if ("query" in spec) {
      try { v = new URL(global.location.href).searchParams.get(spec.query); } catch (e) { v = undefined; }
    } else if ("attribute" in spec || "property" in spec) {
      var el = this._element(spec, ctx);
      if (el) v = "attribute" in spec ? el.getAttribute(spec.attribute) : el[spec.property];
    }
    if (typeof v === "string" && spec.trim !== false) v = v.trim();
    v = convert(v, spec.type);
    if ((v === undefined || v === null || v === "") && "default" in spec) v = spec.default;
    return v;
  };

  // tag.build(eventType, data, options) -> the xdmEntity for an event (mapping applied)
  AepTag.prototype.build = function (eventType, data, options) {
    options = options || {};
    var ctx = { eventType: eventType, data: data || {}, element: options.element || null,
                dataLayer: this.dataLayer() || {}, tag: this };
    var entity = {};
    var mapping = this.config.mapping || {};
    for (var path in mapping) {
      if (!Object.prototype.hasOwnProperty.call(mapping, path)) continue;
      var v;
      try { v = this.resolve(mapping[path], ctx); }
      catch (e) { this.log.warn("aep-tag: data element for " + path + " failed: " + e.message); continue; }
      if (v === undefined || v === null || v === "") continue;
      setPath(entity, path, v);
    }
    if (isObject(options.xdm)) deepMerge(entity, options.xdm);
    entity._id = options.id || uuid();
    entity.timestamp = options.timestamp || new Date().toISOString();
    if (eventType) entity.eventType = eventType;
    return entity;
  };

  // tag.envelope(entity) -> the DCS message (header + body, docs/AEP-API-FACTS.md §8.2)
  AepTag.prototype.envelope = function (entity) {
    var cfg = this.config;
    var ref = { id: cfg.schemaId, contentType: cfg.contentType || CONTENT_TYPE };
    var header = { schemaRef: ref, datasetId: cfg.datasetId, createdAt: String(Date.now()) };
    if (cfg.imsOrgId) header.imsOrgId = cfg.imsOrgId;
    if (cfg.flowId) header.flowId = cfg.flowId;
    if (cfg.sourceName) header.source = { name: cfg.sourceName };
    return { header: header, body: { xdmMeta: { schemaRef: ref }, xdmEntity: entity } };
  };

  // tag.send(eventType, data, options) -> Promise of {status: "accepted" | "rejected" | "failed" |
  //   "beacon", xactionId?, message?, entity}. options: element, xdm (fields set as they are), id,
  //   timestamp, syncValidation.
  AepTag.prototype.send = function (eventType, data, options) {
    options = options || {};
    var self = this;
    var entity = this.build(eventType, data, options);
    var message = this.envelope(entity);
    var sync = options.syncValidation !== undefined ? options.syncValidation : this.config.syncValidation;
    return new Promise(function (resolve) {
      var item = { message: message, entity: entity, resolve: resolve, attempt: 0, sync: !!sync,
                   size: JSON.stringify(message).length };
      self.queue.push(item);
      self._schedule();
    });
  };

  // tag.flush() -> Promise, resolved when what was queued has been answered
  AepTag.prototype.flush = function () {
    var self = this;
    var pending = this.queue.slice();
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this._pump(true);
    return Promise.all(pending.map(function (it) {
      return new Promise(function (r) { var done = it.resolve; it.resolve = function (x) { done(x); r(x); }; });
    }));
  };

  AepTag.prototype._schedule = function () {
    var self = this;
    if (this.inFlight || this.timer) return;
    var wait = this.config.batchWaitMs;
    if (this.queue.length >= this.config.batchSize) wait = 0;
    var now = Date.now();
    if (this.retryAt > now) wait = Math.max(wait, this.retryAt - now);
    this.timer = setTimeout(function () { self.timer = null; self._pump(false); }, wait);
  };

  // Takes the next request's events off the queue: one sync-validation event alone, or up to
  // batchSize events within maxBytes.
  AepTag.prototype._take = function (limitBytes) {
    var q = this.queue;
    if (!q.length) return [];
    if (q[0].sync) return q.splice(0, 1);
    var n = 0, bytes = 16;
    while (n < q.length && n < this.config.batchSize && !q[n].sync) {
      if (n > 0 && bytes + q[n].size + 1 > limitBytes) break;
      bytes += q[n].size + 1;
      n++;
    }
    return q.splice(0, n);
  };

  AepTag.prototype._pump = function (now) {
    if (this.inFlight || !this.queue.length) return;
    if (!now && this.retryAt > Date.now()) { this._schedule(); return; }
    var items = this._take(this.config.maxBytes);
    this._post(items);
  };

  AepTag.prototype._headers = function () {
    var h = { "Content-Type": "application/json" };
    if (this.config.token) h.Authorization = "Bearer " + this.config.token;
    if (this.config.sandbox) h["x-sandbox-name"] = this.config.sandbox;
    return h;
  };

  AepTag.prototype._post = function (items) {
    var self = this;
    var single = items.length === 1 && items[0].sync;
    var url, body;
    if (single) {
      url = this.inletUrl + "?syncValidation=true";
      body = JSON.stringify(items[0].message);
    } else {
      url = this.batchUrl;
      body = JSON.stringify({ messages: items.map(function (it) { return it.message; }) });
    }
    this.inFlight = items;
    this.stats.sent += items.length;
    var opts = { method: "POST", headers: this._headers(), body: body, mode: "cors", credentials: "omit" };
    if (this.config.keepalive && body.length < this.config.beaconBytes) opts.keepalive = true;
    items.forEach(function (it) { it.attempt++; });
    global.fetch(url, opts).then(function (resp) {
      return resp.text().then(function (text) {
        var doc = null;
        try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
        self._answer(items, resp.status, doc, text, resp.headers.get("Retry-After"), single);
      });
    }, function (err) {
      self._answer(items, 0, null, String(err && err.message || err), null, single);
    }).then(function () {
      self.inFlight = false;
      if (self.queue.length) self._schedule();
    }, function (err) {
      self.inFlight = false;
      self.log.error("aep-tag: internal error: " + (err && err.stack || err));
    });
  };

  // AEP's words for a rejection: report.message plus the schema violations, or detail/title.
  function aepMessage(status, doc, text) {
    if (isObject(doc)) {
      var report = isObject(doc.report) ? doc.report : null;
      var msg = (report && report.message) || doc.message || doc.detail || doc.title;
      var causes = [];
      var sv = report && isObject(report.cause) && report.cause._streamingValidation;
      (function walk(list) {
        (Array.isArray(list) ? list : []).forEach(function (v) {
          if (!isObject(v)) return;
          if (Array.isArray(v.causingExceptions) && v.causingExceptions.length) walk(v.causingExceptions);
          else if (v.message) causes.push((v.pointerToViolation && v.pointerToViolation !== "#" ? v.pointerToViolation + ": " : "") + v.message);
        });
      })(sv);
      if (msg) return String(msg) + (causes.length ? " | " + causes.join("; ") : "");
    }
    return (text && String(text).slice(0, 500)) || ("HTTP " + status);
  }

  AepTag.prototype._reject = function (it, status, message) {
    this.stats.rejected++;
    var ev = it.entity;
    this.log.error("aep-tag: AEP rejected event " + JSON.stringify(ev.eventType || "") + " (_id " + ev._id +
      ", HTTP " + status + "): " + message);
    it.resolve({ status: "rejected", httpStatus: status, message: message, entity: ev });
    if (typeof this.config.onResult === "function") this.config.onResult({ status: "rejected", httpStatus: status, message: message, entity: ev });
  };

  AepTag.prototype._accept = function (it, xactionId, status) {
    this.stats.accepted++;
    var r = { status: "accepted", httpStatus: status, xactionId: xactionId, entity: it.entity };
    it.resolve(r);
    if (typeof this.config.onResult === "function") this.config.onResult(r);
  };

  AepTag.prototype._fail = function (it, status, message) {
    this.stats.failed++;
    var ev = it.entity;
    this.log.error("aep-tag: event " + JSON.stringify(ev.eventType || "") + " (_id " + ev._id +
      ") was not delivered after " + it.attempt + " attempts (HTTP " + (status || "network error") + "): " + message);
    var r = { status: "failed", httpStatus: status, message: message, entity: ev };
    it.resolve(r);
    if (typeof this.config.onResult === "function") this.config.onResult(r);
  };

  AepTag.prototype._retry = function (items, status, retryAfter, message) {
    var cfg = this.config, self = this;
    var keep = [];
    items.forEach(function (it) {
      if (it.attempt > cfg.retries) self._fail(it, status, message);
      else keep.push(it);
    });
    if (!keep.length) return;
    var attempt = keep[0].attempt;
    var wait = Math.min(cfg.maxBackoffMs, cfg.backoffMs * Math.pow(2, attempt - 1));
    wait = wait / 2 + Math.random() * wait / 2;
    var ra = Number(retryAfter);
    if (retryAfter && isFinite(ra)) wait = Math.max(wait, ra * 1000);
    this.stats.retried += keep.length;
    this.log.warn("aep-tag: HTTP " + (status || "network error") + " from the inlet; retrying " + keep.length +
      " event(s) in " + Math.round(wait) + " ms (attempt " + (attempt + 1) + " of " + (cfg.retries + 1) + ")");
    this.retryAt = Date.now() + wait;
    Array.prototype.unshift.apply(this.queue, keep);
  };

  AepTag.prototype._answer = function (items, status, doc, text, retryAfter, single) {
    var self = this;
    if (status === 207 && isObject(doc) && Array.isArray(doc.responses)) {
      items.forEach(function (it, i) {
        var r = doc.responses[i];
        if (isObject(r) && r.xactionId && !r.statusCode) self._accept(it, r.xactionId, 207);
        else if (isObject(r)) self._reject(it, r.statusCode || 400, r.message || JSON.stringify(r));
        else self._reject(it, 207, "no answer for this event in the 207 response");
      });
      return;
    }
    if (status >= 200 && status < 300) {
      items.forEach(function (it) { self._accept(it, isObject(doc) ? doc.xactionId : undefined, status); });
      return;
    }
    if (status === 413 && items.length > 1) {         // too large: split and resend both halves
      var half = Math.ceil(items.length / 2);
      items.forEach(function (it) { it.attempt--; });
      Array.prototype.unshift.apply(this.queue, items.slice(0, half).concat(items.slice(half)));
      this.config.batchSize = Math.max(1, Math.min(this.config.batchSize, half));
      return;
    }
    if (status === 0 || status === 429 || status >= 500) {
      this._retry(items, status, retryAfter, aepMessage(status, doc, text));
      return;
    }
    var message = aepMessage(status, doc, text);
    items.forEach(function (it) { self._reject(it, status, message); });
  };

  // On page hide: everything still queued goes out with navigator.sendBeacon, in chunks under
  // the beacon size limit. Beacons carry no custom header: inlets that need a bearer token get
  // fetch(keepalive) instead. An event sent this way resolves with status "beacon".
  AepTag.prototype._beacon = function () {
    if (!this.queue.length) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    var nav = global.navigator;
    var useBeacon = nav && typeof nav.sendBeacon === "function" && !this.config.token;
    while (this.queue.length) {
      var items = this._take(this.config.beaconBytes);
      if (items.length === 1 && items[0].sync) items[0].sync = false;  // no time left to validate
      var body = JSON.stringify({ messages: items.map(function (it) { return it.message; }) });
      var ok = false;
      if (useBeacon) {
        try { ok = nav.sendBeacon(this.batchUrl, new Blob([body], { type: "text/plain;charset=UTF-8" })); }
        catch (e) { ok = false; }
      }
      if (!ok) {
        try {
          global.fetch(this.batchUrl, { method: "POST", headers: this._headers(), body: body, keepalive: true,
                                        mode: "cors", credentials: "omit" });
          ok = true;
        } catch (e2) { ok = false; }
      }
      this.stats.beaconed += items.length;
      items.forEach(function (it) { it.resolve({ status: ok ? "beacon" : "failed", entity: it.entity }); });
    }
  };

  // tag.bind(root): clicks on elements with data-aep-event="eventType" send that event, with the
  // element's data-* attributes as data and the element as options.element.
  AepTag.prototype.bind = function (root) {
    var self = this;
    root = root || global.document;
    root.addEventListener("click", function (e) {
      var el = e.target && e.target.closest ? e.target.closest("[data-aep-event]") : null;
      if (!el) return;
      var data = {};
      for (var k in el.dataset) if (k !== "aepEvent") data[k] = el.dataset[k];
      self.send(el.getAttribute("data-aep-event"), data, { element: el });
    });
    return this;
  };

  // tag.close(): stop listening for page hide (what is queued is sent first)
  AepTag.prototype.close = function () {
    this._beacon();
    if (global.removeEventListener && this._onHide) {
      global.removeEventListener("pagehide", this._onHide);
      if (global.document) global.document.removeEventListener("visibilitychange", this._onHide);
    }
  };

  var api = {
    version: VERSION,
    create: function (config) { return new AepTag(config); },
    AepTag: AepTag,
    util: { getPath: getPath, setPath: setPath, batchUrlOf: batchUrlOf, uuid: uuid }
  };
  global.aepTag = api;
  if (typeof module === "object" && module && module.exports) module.exports = api;
})(typeof window !== "undefined" ? window : this);
