// The emulator's demo page: a loyalty member and a few buttons sending XDM experience events
// through aep-tag.js. Its configuration comes from /emulator/demo?dataset=...&inlet=... (the
// emulator fills in the inlet URL, schema, org and flow); without them it offers a choice.
(function () {
  "use strict";

  var state = JSON.parse(document.getElementById("demo-state").textContent || "{}");
  var $ = function (id) { return document.getElementById(id); };

  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text;
    select.appendChild(o);
  }

  if (!state.config) {
    $("setup").hidden = false;
    if (state.error) { $("setup-error").hidden = false; $("setup-error").textContent = state.error; }
    var c = state.candidates || { datasets: [], inlets: [] };
    c.datasets.forEach(function (d) { option($("setup-dataset"), d.id, d.name + " (" + d.id + ")"); });
    c.inlets.forEach(function (i) { option($("setup-inlet"), i.id, (i.name || "inlet") + " (" + i.id + ")"); });
    if (!c.datasets.length) option($("setup-dataset"), "", "no ExperienceEvent dataset yet");
    if (!c.inlets.length) option($("setup-inlet"), "", "no streaming inlet yet");
    return;
  }

  var cfg = state.config;
  var tenant = "_" + cfg.tenant;
  var member = {
    email: state.member || "tscrowby0@chicagotribune.com",
    name: "Timi Scrowby",
    level: "Platinum",
    points: 241450
  };
  var LEVELS = ["Silver", "Gold", "Platinum", "Diamond"];
  function levelFor(points) {  // the sample data's thresholds
    return points >= 300000 ? "Diamond" : points >= 200000 ? "Platinum" : points >= 100000 ? "Gold" : "Silver";
  }

  // The page's data layer, as a site would publish it for its tag manager.
  window.digitalData = {
    page: { name: document.title, section: "rewards" },
    member: { email: member.email, points: member.points, level: member.level }
  };

  var mapping = {};
  mapping[tenant + ".loyaltyID"] = { dataLayer: "member.email" };
  mapping[tenant + ".loyaltyLevel"] = { selector: "#member", attribute: "data-level" };
  mapping[tenant + ".totalPoints"] = { dataLayer: "member.points", type: "integer" };
  mapping[tenant + ".pointsEarned"] = { data: "points", type: "integer" };
  mapping[tenant + ".transactionID"] = function (c) {
    return "web:" + location.pathname + ":" + c.eventType + ":" + Date.now().toString(36);
  };

  var tag = aepTag.create({
    inletUrl: cfg.inletUrl, datasetId: cfg.datasetId, schemaId: cfg.schemaId, imsOrgId: cfg.imsOrgId,
    flowId: cfg.flowId, sourceName: cfg.sourceName,
    dataLayer: "digitalData", mapping: mapping,
    batchWaitMs: state.batchWaitMs || 150,
    onResult: function (r) { show(r); }
  });
  window.demoTag = tag;

  // ---- the page -------------------------------------------------------------------------
  function render() {
    $("member").setAttribute("data-loyalty-id", member.email);
    $("member").setAttribute("data-level", member.level);
    $("member-email").textContent = member.email;
    $("member-level").textContent = member.level;
    $("member-level").className = "badge " + member.level.toLowerCase();
    $("member-points").textContent = member.points.toLocaleString("en-US");
    window.digitalData.member.points = member.points;
    window.digitalData.member.level = member.level;
  }

  var rows = {};
  function row(entity, text, cls) {
    $("log-empty").hidden = true;
    var tr = rows[entity._id];
    if (!tr) {
      tr = document.createElement("tr");
      tr.innerHTML = "<td></td><td></td><td class='mono'></td><td></td>";
      tr.children[0].textContent = new Date(entity.timestamp).toLocaleTimeString();
      tr.children[1].textContent = entity.eventType;
      tr.children[2].textContent = entity._id.slice(0, 8) + "…";
      tr.children[2].title = entity._id;
      $("log").insertBefore(tr, $("log").firstChild);
      rows[entity._id] = tr;
    }
    tr.children[3].textContent = text;
    tr.children[3].className = cls;
    tr.dataset.status = cls;
  }
  function show(r) {
    if (r.status === "accepted") row(r.entity, "accepted · " + (r.xactionId || ""), "ok");
    else if (r.status === "rejected") row(r.entity, "rejected: " + String(r.message).replace(/^inletId: \[[^\]]*\] imsOrgId: \[[^\]]*\] /, ""), "bad");
    else if (r.status === "failed") row(r.entity, "not delivered: " + r.message, "bad");
    else row(r.entity, r.status, "muted");
    var s = tag.stats;
    $("stats").textContent = s.accepted + " accepted · " + s.rejected + " rejected" + (s.failed ? " · " + s.failed + " failed" : "");
  }
  function send(eventType, data, opts) {
    opts = opts || {};
    if ($("sync").checked) opts.syncValidation = true;
    var p = tag.send(eventType, data, opts);
    var entity = tag.queue[tag.queue.length - 1].entity;
    row(entity, "sending…", "muted");
    return p;
  }

  function earn(points, el) {
    member.points += points;
    member.level = levelFor(member.points);
    render();
    return send("loyaltyBalanceUpdate", { points: points }, { element: el });
  }

  $("earn-250").addEventListener("click", function (e) { earn(250, e.currentTarget); });
  $("earn-1000").addEventListener("click", function (e) { earn(1000, e.currentTarget); });
  $("level-up").addEventListener("click", function () {
    var i = LEVELS.indexOf(member.level);
    member.level = LEVELS[Math.min(LEVELS.length - 1, i + 1)];
    render();
    send("loyaltyLevelUpdate", { points: 0 });
  });
  // A level the schema's enum does not have: with sync validation AEP answers 400 at once and
  // the tag reports AEP's message with console.error.
  $("invalid").addEventListener("click", function () {
    var xdm = {};
    xdm[tenant] = { loyaltyLevel: "Bronze" };
    send("loyaltyLevelUpdate", { points: 0 }, { xdm: xdm, syncValidation: true });
  });
  // Sends, then leaves at once: the event is still queued when the page goes, so the tag's
  // pagehide handler hands it to navigator.sendBeacon.
  $("leave").addEventListener("click", function () {
    earn(50);
    location.href = state.leaveTo || "about:blank";
  });

  var mt = $("mapping");
  Object.keys(mapping).forEach(function (path) {
    var spec = mapping[path];
    var tr = document.createElement("tr");
    tr.innerHTML = "<td class='mono'></td><td class='mono'></td>";
    tr.children[0].textContent = path;
    tr.children[1].textContent = typeof spec === "function" ? "function (page path, event type, time)" : JSON.stringify(spec);
    mt.appendChild(tr);
  });
  ["_id ← generated UUID", "timestamp ← time of send()", "eventType ← send(eventType, …)"].forEach(function (t) {
    var tr = document.createElement("tr");
    tr.innerHTML = "<td class='mono'></td><td class='mono'></td>";
    tr.children[0].textContent = t.split(" ← ")[0];
    tr.children[1].textContent = t.split(" ← ")[1];
    mt.appendChild(tr);
  });
  $("cfg-dataset").textContent = cfg.datasetId;
  $("cfg-inlet").textContent = cfg.inletUrl;
  $("cfg-org").textContent = cfg.imsOrgId;
  $("console-link").href = state.base + "/emulator/ui";

  $("shop").hidden = false;
  render();
})();
