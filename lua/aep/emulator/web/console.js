// The emulator console: plain JS, no build step. It reads /emulator/ui/api/* and polls
// /emulator/ui/api/live every second for what changed (records, rejections, requests, counts).
// Every value from the emulator is put in the page as text (never as HTML).
(function () {
  "use strict";

  var POLL_MS = 1000, POLL_HIDDEN_MS = 5000, KEEP_ITEMS = 500, KEEP_REQUESTS = 300;
  var params = new URLSearchParams(location.search);
  var S = {
    sandbox: params.get("sandbox") || "prod",
    overview: null, names: {}, tenant: null, stamp: null,
    cursors: { records: 0, rejects: 0, requests: 0 },
    items: [], requests: [], timer: null, failing: false, lastOk: 0
  };

  // ---- helpers ----------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function fmtTime(ms) {
    if (!ms) return "";
    var d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }
  function fmtDate(ms) {
    if (!ms) return "";
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function fmtNum(n) { return (n || 0).toLocaleString("en-US"); }
  function tag(text, cls) { return h("span", { class: "tag " + (cls || "") , text: text }); }
  function isObj(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

  function problemText(body, status) {
    if (isObj(body)) {
      var r = isObj(body.report) ? body.report : null;
      return (body.title ? body.title + ": " : "") + (body.detail || (r && r.message) || body.message || "") +
        (status ? " (HTTP " + status + ")" : "");
    }
    return "HTTP " + status;
  }

  // api(path, query) -> Promise of the decoded JSON; a non-2xx answer rejects with AEP's words
  function api(path, query) {
    var q = new URLSearchParams(query || {});
    q.set("sandbox", S.sandbox);
    return fetch(path + "?" + q.toString(), { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (resp) {
        return resp.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
          if (!resp.ok) { var err = new Error(problemText(body, resp.status)); err.status = resp.status; err.body = body; throw err; }
          return body;
        });
      });
  }

  function banner(msg) {
    var b = $("banner");
    if (!msg) { b.hidden = true; b.textContent = ""; return; }
    b.hidden = false; b.textContent = msg;
  }

  function setLive(ok, text) {
    var el = $("live");
    el.className = "live " + (ok ? "on" : "off");
    el.textContent = text;
  }

  // ---- tabs -------------------------------------------------------------------------------
  function showTab() {
    var hash = location.hash.replace(/^#/, "");
    var name = hash.split("/")[0] || "overview";
    if (!$("tab-" + name)) name = "overview";
    document.querySelectorAll(".tab").forEach(function (t) { t.hidden = t.id !== "tab-" + name; });
    document.querySelectorAll("#tabs a").forEach(function (a) { a.classList.toggle("active", a.dataset.tab === name); });
    if (name === "profile") {
      var parts = hash.split("/");
      if (parts.length >= 3) {
        $("profile-ns").value = decodeURIComponent(parts[1]);
        $("profile-id").value = decodeURIComponent(parts.slice(2).join("/"));
        lookup();
      }
    }
  }
  window.addEventListener("hashchange", showTab);

  // ---- overview ---------------------------------------------------------------------------
  function loadOverview() {
    return api("/emulator/ui/api/overview").then(function (o) {
      S.overview = o;
      S.tenant = o.org.tenantId;
      S.names = {};
      o.datasets.forEach(function (d) { S.names[d.id] = d.name; });
      $("org").textContent = o.org.imsOrg;
      $("tenant").textContent = o.org.tenantId;
      $("emu-url").textContent = o.emulator.url;
      var sel = clear($("sandbox"));
      o.sandboxes.forEach(function (s) { add(sel, h("option", { value: s, text: s, selected: s === S.sandbox })); });
      renderStats();
      renderDatasets();
      renderInlets(); renderDatastreams();
      renderSchemas();
      var f = $("rec-dataset"), cur = f.value;
      clear(f);
      add(f, h("option", { value: "", text: "all datasets" }));
      o.datasets.forEach(function (d) { add(f, h("option", { value: d.id, text: d.name, selected: d.id === cur })); });
      $("tab-schemas-n").textContent = o.schemas.length || "";
    });
  }

  function renderStats() {
    var o = S.overview;
    var acc = 0, fail = 0;
    o.datasets.forEach(function (d) { acc += d.records.success; fail += d.records.failed; });
    var el = clear($("stats"));
    function stat(n, label, cls) { return h("div", { class: "stat " + (cls || "") }, h("div", { class: "n", text: n }), h("div", { class: "l", text: label })); }
    add(el, [stat(fmtNum(o.schemas.length), "schemas"), stat(fmtNum(o.datasets.length), "datasets"),
             stat(fmtNum(o.inlets.length), "streaming inlets"), stat(fmtNum(acc), "records accepted"),
             stat(fmtNum(fail), "records failed", fail ? "bad" : ""), stat(fmtNum(S.cursors.rejectsSeen || 0), "rejected on the wire", S.cursors.rejectsSeen ? "bad" : "")]);
  }

  function renderDatasets() {
    var o = S.overview;
    var tb = clear($("datasets").tBodies[0]);
    $("datasets-empty").hidden = o.datasets.length > 0;
    o.datasets.forEach(function (d) {
      add(tb, h("tr", { "data-dataset": d.id },
        h("td", null, h("strong", { text: d.name })),
        h("td", { class: "mono", text: d.id }),
        h("td", { title: d.schemaId || "" }, d.schemaTitle || h("span", { class: "mono dim", text: d.schemaId || "—" })),
        h("td", null, d.profile ? tag("Profile", "info") : tag("off"), " ", d.identity ? tag("Identity", "info") : null),
        h("td", { class: "num", "data-count": "success", text: fmtNum(d.records.success) }),
        h("td", { class: "num", "data-count": "failed" }, d.records.failed ? h("span", { class: "tag bad", text: fmtNum(d.records.failed) }) : "0")));
    });
  }

  function updateCounts(counts) {
    if (!S.overview) return;
    var changed = false;
    S.overview.datasets.forEach(function (d) {
      var c = counts[d.id];
      if (!c) return;
      if (c.success !== d.records.success || c.failed !== d.records.failed) { d.records = c; changed = true; }
    });
    if (changed) { renderDatasets(); renderStats(); }
  }

  function renderInlets() {
    var o = S.overview;
    var tb = clear($("inlets").tBodies[0]);
    $("inlets-empty").hidden = o.inlets.length > 0;
    o.inlets.forEach(function (i) {
      var flows = i.flows.map(function (f) {
        return h("div", { class: "small" }, h("span", { class: "mono", text: f.id }), " → ",
          f.datasetIds.map(function (id) { return S.names[id] || id; }).join(", ") || "—");
      });
      var demo = null;
      // the demo sends experience events: to a dataset this inlet's dataflows target, if it has any
      var targets = {};
      i.flows.forEach(function (f) { f.datasetIds.forEach(function (id) { targets[id] = true; }); });
      var ev = o.datasets.filter(function (d) {
        var s = o.schemas.filter(function (x) { return x.id === d.schemaId; })[0];
        return s && s.class === "https://ns.adobe.com/xdm/context/experienceevent" && (!i.flows.length || targets[d.id]);
      });
      if (ev.length) demo = h("a", { class: "nowrap", href: "/emulator/demo?inlet=" + encodeURIComponent(i.id) + "&dataset=" + encodeURIComponent(ev[0].id), target: "_blank", text: "demo page" });
      add(tb, h("tr", null,
        h("td", null, h("strong", { text: i.name || "inlet" }), i.sourceId && i.sourceId !== i.name ? h("div", { class: "dim small", text: "source " + i.sourceId }) : null),
        h("td", { class: "mono url", text: i.url }),
        h("td", null, i.authenticationRequired ? tag("bearer token", "warn") : tag("none")),
        h("td", null, flows.length ? flows : h("span", { class: "dim", text: "none (legacy inlet)" })),
        h("td", null, demo)));
    });
  }

  // Datastreams: where the Edge Network (the Web SDK, the Server API) sends events
  function renderDatastreams() {
    var list = S.overview.datastreams || [];
    var tb = clear($("datastreams").tBodies[0]);
    $("datastreams-empty").hidden = list.length > 0;
    list.forEach(function (d) {
      add(tb, h("tr", null,
        h("td", null, h("strong", { text: d.name || "datastream" })),
        h("td", { class: "mono", text: d.id }),
        h("td", { text: S.names[d.eventDataset] || d.eventDataset }),
        h("td", { text: d.profileDataset ? (S.names[d.profileDataset] || d.profileDataset) : "—" }),
        h("td", null, tag(d.defaultConsent, d.defaultConsent === "out" ? "warn" : null)),
        h("td", null, h("a", { class: "nowrap", href: "/emulator/demo/websdk?datastream=" + encodeURIComponent(d.id), target: "_blank", text: "Web SDK demo" }))));
    });
  }

  // ---- schemas ----------------------------------------------------------------------------
  function fieldTree(fields, idents, root) {
    var ul = h("ul", { class: "tree" + (root ? " root" : "") });
    fields.forEach(function (f) {
      var id = idents[f.path];
      var line = h("span", { class: "field" },
        h("span", { class: "name mono", text: f.name }),
        h("span", { class: "type mono", text: (f.type || "") + (f.items ? "<" + f.items + ">" : "") + (f.format ? " (" + f.format + ")" : "") }),
        f.required ? tag("required", "warn") : null,
        id ? tag((id.primary ? "primary identity · " : "identity · ") + id.namespace, "info") : null,
        f.enum ? h("span", { class: "enum small", text: "enum: " + f.enum.join(", ") }) : null,
        f.title && f.title !== f.name ? h("span", { class: "dim small", text: f.title }) : null);
      var li = h("li", null, line);
      if (f.fields && f.fields.length) add(li, fieldTree(f.fields, idents, false));
      add(ul, li);
    });
    return ul;
  }

  var CLASSES = {
    "https://ns.adobe.com/xdm/context/profile": "XDM Individual Profile",
    "https://ns.adobe.com/xdm/context/experienceevent": "XDM ExperienceEvent"
  };

  function renderSchemas() {
    var o = S.overview;
    var box = clear($("schemas"));
    $("schemas-empty").hidden = o.schemas.length > 0;
    o.schemas.forEach(function (s) {
      var idents = {};
      s.identities.forEach(function (i) { idents[i.path] = i; });
      var cls = CLASSES[s.class] || (s.class ? "class " + s.class : "unknown class");
      var usedBy = o.datasets.filter(function (d) { return d.schemaId === s.id; }).map(function (d) { return d.name; });
      var card = h("div", { class: "card" },
        h("div", { class: "schema-head" }, h("h2", { text: s.title || s.id }), tag(cls, "info"),
          s.profile ? tag("Profile (union)", "ok") : null),
        h("div", { class: "mono dim small", text: s.id }),
        s.error ? h("div", { class: "error", text: "Cannot resolve this schema: " + s.error }) : null,
        h("div", { class: "small" }, h("span", { class: "dim", text: "identities: " }),
          s.identities.length ? s.identities.map(function (i, n) {
            return [n ? ", " : "", h("code", { text: i.path }), " (" + i.namespace + (i.primary ? ", primary" : "") + ")"];
          }) : h("span", { class: "tag bad", text: "no identity descriptor" })),
        usedBy.length ? h("div", { class: "small" }, h("span", { class: "dim", text: "datasets: " }), usedBy.join(", ")) : null);
      var tenantKey = "_" + S.tenant;
      var tenantFields = s.fields.filter(function (f) { return f.name === tenantKey; });
      var rest = s.fields.filter(function (f) { return f.name !== tenantKey; });
      if (tenantFields.length) add(card, fieldTree(tenantFields, idents, true));
      if (rest.length) add(card, h("details", { class: "fields" }, h("summary", { text: rest.length + " standard fields (class and Adobe field groups)" }), fieldTree(rest, idents, true)));
      add(box, card);
    });
  }

  // ---- batches ----------------------------------------------------------------------------
  function loadBatches() {
    return api("/emulator/ui/api/batches").then(function (b) {
      var tb = clear($("batches").tBodies[0]);
      $("batches-empty").hidden = b.batches.length > 0;
      $("tab-batches-n").textContent = b.batches.length || "";
      b.batches.forEach(function (x) {
        var m = x.metrics || {};
        var st = x.status;
        var cls = st === "success" ? "ok" : st === "failed" || st === "aborted" ? "bad" : "warn";
        var errs = (x.errors || []).map(function (e) {
          return h("div", { class: "small" + (cls === "bad" ? " wire" : "") }, h("code", { text: e.code || "" }), " ",
            e.description || e.message || "", e.recordCount ? " (" + e.recordCount + " records)" : "");
        });
        add(tb, h("tr", null,
          h("td", { class: "mono nowrap", text: x.id }),
          h("td", { title: x.datasetId, text: x.datasetName || x.datasetId }),
          h("td", null, tag(st, cls)),
          h("td", { class: "nowrap", text: fmtDate(x.created) }),
          h("td", { class: "num", text: m.inputRecordCount !== undefined ? fmtNum(m.inputRecordCount) : "" }),
          h("td", { class: "num", text: m.outputRecordCount !== undefined ? fmtNum(m.outputRecordCount) : "" }),
          h("td", { class: "num", text: m.failedRecordCount !== undefined ? fmtNum(m.failedRecordCount) : "" }),
          h("td", null, errs)));
      });
    });
  }

  // ---- records ----------------------------------------------------------------------------
  function identityOf(entity) {
    if (!isObj(entity)) return null;
    var t = entity["_" + S.tenant];
    if (isObj(t) && t.loyaltyID) return t.loyaltyID;
    if (isObj(entity.personalEmail) && entity.personalEmail.address) return entity.personalEmail.address;
    if (isObj(entity.identityMap)) {
      for (var ns in entity.identityMap) {
        var l = entity.identityMap[ns];
        if (Array.isArray(l) && l[0] && l[0].id) return l[0].id;
      }
    }
    return null;
  }

  function chips(obj, limit, skip) {
    var out = [];
    if (!isObj(obj)) return out;
    Object.keys(obj).sort().forEach(function (k) {
      var v = obj[k];
      if (out.length >= (limit || 6) || isObj(v) || Array.isArray(v) || v === skip) return;
      out.push(h("span", null, h("span", { class: "k", text: k + "=" }), h("span", { class: "mono", text: String(v) })));
    });
    return out;
  }

  function recordCell(it) {
    var e = it.entity;
    var who = identityOf(e);
    var head = h("div", { class: "summary" },
      isObj(e) && e.eventType ? h("strong", { text: e.eventType }) : null,
      who ? h("span", { class: "mono", text: who }) : null,
      !isObj(e) ? h("span", { class: "dim", text: "no xdmEntity" }) : null);
    var cell = h("td", null, head);
    if (isObj(e)) add(cell, h("div", { class: "chips" }, chips(e["_" + S.tenant], 8, who)));
    if (it.message) add(cell, h("div", { class: "wire small", text: it.message }));
    if (it.violations && it.violations.length) {
      add(cell, h("ul", { class: "violations small" }, it.violations.map(function (v) {
        return h("li", null, v.pointer && v.pointer !== "#" ? [h("code", { text: v.pointer }), " "] : null,
          v.message || JSON.stringify(v), v.keyword ? h("span", { class: "dim", text: " (" + v.keyword + ")" }) : null);
      })));
    }
    if (e !== undefined && e !== null) {
      add(cell, h("details", { class: "raw" }, h("summary", null, "xdmEntity",
          isObj(e) && e._id !== undefined ? h("span", { class: "dim mono", text: "  _id " + e._id }) : null),
        h("pre", { class: "json", text: JSON.stringify(e, null, 2) })));
    }
    return cell;
  }

  function resultCell(it) {
    if (it.kind === "reject") return h("td", null, tag("rejected", "bad"), h("div", { class: "dim small", text: "HTTP " + it.status + " on the wire" }));
    if (it.status === "success") return h("td", null, tag("accepted", "ok"));
    return h("td", null, tag("rejected", "bad"), h("div", { class: "dim small", text: "failed batch" }));
  }

  function itemRow(it, fresh) {
    return h("tr", { class: fresh ? "flash" : null, "data-status": it.kind === "reject" ? "rejected" : it.status === "success" ? "accepted" : "failed",
                     "data-dataset": it.dataset || "" },
      h("td", { class: "mono", text: fmtTime(it.time) }),
      h("td", { title: it.dataset || "", text: it.datasetName || S.names[it.dataset] || it.dataset || "—" }),
      resultCell(it), recordCell(it));
  }

  function visible(it) {
    var ds = $("rec-dataset").value, st = $("rec-status").value;
    if (ds && it.dataset !== ds) return false;
    if (st === "success" && !(it.kind === "record" && it.status === "success")) return false;
    if (st === "failed" && it.kind === "record" && it.status === "success") return false;
    return true;
  }

  function renderItems() {
    var tb = clear($("records").tBodies[0]);
    var shown = 0;
    S.items.forEach(function (it) { if (visible(it)) { add(tb, itemRow(it, false)); shown++; } });
    $("records-empty").hidden = shown > 0;
  }

  function addItems(list, fresh) {
    if (!list.length) return;
    list.sort(function (a, b) { return a.time - b.time; });
    var tb = $("records").tBodies[0];
    list.forEach(function (it) {
      S.items.unshift(it);
      if (visible(it)) { tb.insertBefore(itemRow(it, fresh), tb.firstChild); $("records-empty").hidden = true; }
    });
    if (S.items.length > KEEP_ITEMS) {
      S.items.length = KEEP_ITEMS;
      while (tb.rows.length > KEEP_ITEMS) tb.deleteRow(tb.rows.length - 1);
    }
    $("tab-records-n").textContent = S.items.length >= KEEP_ITEMS ? KEEP_ITEMS + "+" : S.items.length;
  }

  // ---- requests ---------------------------------------------------------------------------
  function addRequests(list, fresh) {
    if (!list.length) return;
    var tb = $("requests").tBodies[0];
    $("requests-empty").hidden = true;
    list.forEach(function (r) {
      var cls = r.status >= 500 || r.status === 0 ? "bad" : r.status >= 400 ? "bad" : r.status === 207 ? "info" : "ok";
      tb.insertBefore(h("tr", { class: fresh ? "flash" : null },
        h("td", { class: "mono nowrap", text: fmtTime(r.time * 1000) }),
        h("td", { class: "mono", text: r.method }),
        h("td", { class: "mono", text: r.path }),
        h("td", null, tag(String(r.status), cls)),
        h("td", { class: "num", text: r.messages ? fmtNum(r.messages) : "" }),
        h("td", { class: "num", text: r.ms !== undefined ? r.ms.toFixed(1) : "" }),
        h("td", null, r.fault ? tag(r.fault, "warn") : null)), tb.firstChild);
    });
    while (tb.rows.length > KEEP_REQUESTS) tb.deleteRow(tb.rows.length - 1);
  }

  // ---- live -------------------------------------------------------------------------------
  function poll() {
    clearTimeout(S.timer);
    var c = S.cursors;
    return api("/emulator/ui/api/live", { records: c.records, rejects: c.rejects, requests: c.requests })
      .then(function (l) {
        if (S.failing) { S.failing = false; banner(null); }
        if (l.reset) { S.items = []; renderItems(); }
        var items = [];
        l.records.forEach(function (r) {
          items.push({ kind: "record", time: r.receivedTimeMs, dataset: r.dataset, datasetName: r.datasetName,
                       status: r.status, entity: r.entity, violations: r.violations, xactionId: r.xactionId });
        });
        l.rejects.forEach(function (r) {
          c.rejectsSeen = (c.rejectsSeen || 0) + 1;
          items.push({ kind: "reject", time: r.time, dataset: r.dataset, datasetName: r.datasetName, status: r.status,
                       entity: r.entity, violations: r.violations, message: r.message });
        });
        var fresh = S.polled;
        S.polled = true;
        addItems(items, fresh);
        addRequests(l.requests, fresh);
        c.records = l.cursors.records; c.rejects = l.cursors.rejects; c.requests = l.cursors.requests;
        updateCounts(l.counts);
        if (l.streamingBatches) {
          var sb = l.streamingBatches;
          $("streaming-batches").textContent = "streaming wrote " + fmtNum(sb.success + sb.failed) + " batches (" + fmtNum(sb.failed) + " failed)";
        }
        setLive(true, "live · " + new Date(l.time).toLocaleTimeString([], { hour12: false }));
        if (S.stamp !== null && l.stamp !== S.stamp) {
          S.stamp = l.stamp;
          return Promise.all([loadOverview(), loadBatches()]);
        }
        S.stamp = l.stamp;
        if (l.rejects.length) renderStats();
      })
      .catch(function (err) {
        S.failing = true;
        setLive(false, "offline");
        banner("Cannot reach the emulator: " + (err && err.message || err) + " (retrying)");
      })
      .then(function () {
        S.timer = setTimeout(poll, document.hidden ? POLL_HIDDEN_MS : POLL_MS);
      });
  }

  // ---- profile ----------------------------------------------------------------------------
  function flatten(obj, prefix, out) {
    Object.keys(obj).sort().forEach(function (k) {
      if (!prefix && k === "identities") return;
      var v = obj[k], p = prefix ? prefix + "." + k : k;
      if (isObj(v)) flatten(v, p, out);
      else out.push([p, Array.isArray(v) ? JSON.stringify(v) : String(v)]);
    });
    return out;
  }

  function lookup(e) {
    if (e) e.preventDefault();
    var ns = $("profile-ns").value.trim() || "Email";
    var id = $("profile-id").value.trim();
    var err = $("profile-error");
    if (!id) { err.hidden = false; err.textContent = "Give an identity value to look up."; return; }
    var want = "#profile/" + encodeURIComponent(ns) + "/" + encodeURIComponent(id);
    if (location.hash !== want) history.replaceState(null, "", want);
    err.hidden = true;
    return api("/emulator/ui/api/profile", { ns: ns, id: id }).then(function (p) {
      renderProfile(p, ns, id);
    }, function (x) {
      $("profile").hidden = true;
      err.hidden = false;
      clear(err);
      add(err, [h("strong", { text: x.status === 404 ? "No profile found" : "Profile lookup failed" }), x.message]);
    });
  }

  function renderProfile(p, ns, id) {
    var view = p.profile || {};
    var ent = view.entity || {};
    $("profile").hidden = false;
    var person = isObj(ent.person) && isObj(ent.person.name) ? [ent.person.name.firstName, ent.person.name.lastName].filter(Boolean).join(" ") : "";
    $("profile-title").textContent = person ? person + " · " + id : id;
    $("profile-xid").textContent = "entityId " + (p.entityId || "");
    var ids = clear($("profile-identities"));
    (ent.identities || []).forEach(function (i) {
      add(ids, h("span", { class: "ident" + (i.primary ? " primary" : "") }, h("b", { text: i.namespace && i.namespace.code }), i.id, i.primary ? " · primary" : ""));
    });
    var tb = clear($("profile-attrs").tBodies[0]);
    var rows = flatten(ent, "", []);
    if (!rows.length) add(tb, h("tr", null, h("td", { colspan: 2, class: "dim", text: "No profile attributes: only events carry this identity." })));
    rows.forEach(function (r) { add(tb, h("tr", null, h("td", { class: "mono", text: r[0] }), h("td", { class: "mono", text: r[1] }))); });
    var src = clear($("profile-sources"));
    (view.sources || []).forEach(function (s) { if (s) add(src, h("li", null, S.names[s] || s, " ", h("span", { class: "dim mono small", text: S.names[s] ? s : "" }))); });
    $("profile-modified").textContent = view.lastModifiedAt || "";
    var evs = (p.events && p.events.children) || [];
    var etb = clear($("profile-events").tBodies[0]);
    $("profile-events-empty").hidden = evs.length > 0;
    $("profile-events-n").textContent = evs.length ? evs.length + " (newest first)" : "";
    evs.forEach(function (c) {
      var e = c.entity || {};
      add(etb, h("tr", null,
        h("td", { class: "mono nowrap", text: e.timestamp || fmtDate(c.timestamp) }),
        h("td", null, h("strong", { text: e.eventType || "" })),
        h("td", { class: "mono small nowrap", text: c.entityId }),
        h("td", null, h("div", { class: "chips" }, chips(e["_" + S.tenant], 8, id)))));
    });
    if (p.events && p.events.error) {
      add(etb, h("tr", null, h("td", { colspan: 4, class: "wire", text: problemText(p.events.error) })));
    }
  }

  // ---- start ------------------------------------------------------------------------------
  $("profile-form").addEventListener("submit", lookup);
  $("rec-dataset").addEventListener("change", renderItems);
  $("rec-status").addEventListener("change", renderItems);
  $("rec-clear").addEventListener("click", function () { S.items = []; renderItems(); });
  $("sandbox").addEventListener("change", function (e) {
    params.set("sandbox", e.target.value);
    location.search = params.toString();
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });

  loadOverview().then(function () { return loadBatches(); }, function (err) {
    banner("Cannot load the emulator's state: " + err.message);
  }).then(function () {
    showTab();
    poll();
  });
})();
