// The emulator's loyalty demo instrumented with Adobe's Web SDK (alloy, served from the npm
// package at /emulator/web/alloy.js): configure against the emulator's Edge Network
// (edgeDomain = this page's host, edgeBasePath "ee"), send XDM experience events with
// sendEvent, leave the page with documentUnloading (sendBeacon to /ee/v1/collect), setConsent.
(function () {
  "use strict";

  var state = JSON.parse(document.getElementById("demo-state").textContent || "{}");
  var $ = function (id) { return document.getElementById(id); };

  if (!state.config) {
    $("setup").hidden = false;
    if (state.error) { $("setup-error").hidden = false; $("setup-error").textContent = state.error; }
    var list = state.datastreams || [];
    list.forEach(function (d) {
      var o = document.createElement("option");
      o.value = d.id; o.textContent = d.name + " (" + d.id + ")";
      $("setup-datastream").appendChild(o);
    });
    if (!list.length) {
      var o = document.createElement("option");
      o.textContent = "no datastream yet";
      $("setup-datastream").appendChild(o);
    }
    return;
  }

  var cfg = state.config;
  var tenant = "_" + cfg.tenant;
  var member = { email: state.member || "tscrowby0@chicagotribune.com", level: "Platinum", points: 241450 };
  var LEVELS = ["Silver", "Gold", "Platinum", "Diamond"];
  function levelFor(points) {
    return points >= 300000 ? "Diamond" : points >= 200000 ? "Platinum" : points >= 100000 ? "Gold" : "Silver";
  }

  // alloy's edgeDomain is a bare domain (no port: Adobe's Edge Network is on 443). When the emulator
  // listens on another port, this page maps https://<edgeDomain>/ee/... to it, in fetch and
  // sendBeacon, before alloy loads and binds them; alloy itself runs unchanged.
  var edgePrefix = "https://" + cfg.edgeDomain + "/";
  var emulatorPrefix = location.origin + "/";
  if (edgePrefix !== emulatorPrefix) {
    var mapUrl = function (url) {
      return typeof url === "string" && url.indexOf(edgePrefix + cfg.edgeBasePath + "/") === 0
        ? emulatorPrefix + url.slice(edgePrefix.length) : url;
    };
    var realFetch = window.fetch;
    window.fetch = function (input, init) {
      return realFetch.call(window, typeof input === "string" ? mapUrl(input) : input, init);
    };
    if (navigator.sendBeacon) {
      var realBeacon = navigator.sendBeacon.bind(navigator);
      navigator.sendBeacon = function (url, data) { return realBeacon(mapUrl(url), data); };
    }
  }

  // Adobe's base code: queues calls until the library has loaded (Web SDK installation docs).
  !function (n, o) {
    o.forEach(function (o) {
      n[o] || ((n.__alloyNS = n.__alloyNS || []).push(o), n[o] = function () {
        var u = arguments;
        return new Promise(function (i, l) { n[o].q.push([i, l, u]); });
      }, n[o].q = []);
    });
  }(window, ["alloy"]);
  var script = document.createElement("script");
  script.src = "/emulator/web/alloy.js";
  script.async = true;
  document.head.appendChild(script);

  var alloyConfig = {
    datastreamId: cfg.datastreamId,
    orgId: cfg.orgId,
    edgeDomain: cfg.edgeDomain,          // the emulator, instead of edge.adobedc.net
    edgeBasePath: cfg.edgeBasePath,
    thirdPartyCookiesEnabled: false,     // no adobedc.demdex.net: everything stays on this machine
    idMigrationEnabled: false,
    clickCollectionEnabled: false,
    defaultConsent: "in",
    context: ["web", "device", "environment", "placeContext"],
    debugEnabled: true
  };
  $("alloy-config").textContent = "alloy(\"configure\", " + JSON.stringify(alloyConfig, null, 2) + ");";
  $("cfg-datastream").textContent = cfg.datastreamId;
  $("cfg-dataset").textContent = (cfg.datasetName ? cfg.datasetName + " " : "") + "(" + cfg.datasetId + ")";

  function render() {
    $("member-email").textContent = member.email;
    $("member-level").textContent = member.level;
    $("member-level").className = "badge " + member.level.toLowerCase();
    $("member-points").textContent = member.points.toLocaleString("en-US");
  }

  var sent = 0, failed = 0, n = 0;
  function row(eventType) {
    $("log-empty").hidden = true;
    var tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td><td class='mono'></td><td class='muted'>sending…</td>";
    tr.children[0].textContent = new Date().toLocaleTimeString();
    tr.children[1].textContent = eventType;
    tr.children[2].textContent = "#" + (++n);
    $("log").insertBefore(tr, $("log").firstChild);
    return tr;
  }
  function stats() { $("stats").textContent = sent + " sent · " + failed + " refused"; }

  // demo.send(eventType, points[, extra]) -> alloy's sendEvent promise
  function send(eventType, points, extra, options) {
    var xdm = { eventType: eventType };
    xdm[tenant] = {
      loyaltyID: member.email, loyaltyLevel: member.level, totalPoints: member.points, pointsEarned: points,
      transactionID: "websdk:" + eventType + ":" + Date.now().toString(36) + ":" + n
    };
    Object.keys(extra || {}).forEach(function (k) { xdm[tenant][k] = extra[k]; });
    var tr = row(eventType);
    var args = { xdm: xdm };
    Object.keys(options || {}).forEach(function (k) { args[k] = options[k]; });
    return window.alloy("sendEvent", args).then(function (result) {
      sent++; stats();
      tr.children[3].textContent = "sent to the Edge Network"; tr.children[3].className = "ok";
      tr.dataset.status = "ok";
      return result;
    }, function (err) {
      failed++; stats();
      tr.children[3].textContent = String(err && err.message || err); tr.children[3].className = "bad";
      tr.dataset.status = "bad";
      throw err;
    });
  }

  function earn(points) {
    member.points += points;
    member.level = levelFor(member.points);
    render();
    return send("loyaltyBalanceUpdate", points);
  }

  var ready = window.alloy("configure", alloyConfig).then(function () {
    return window.alloy("getIdentity", { namespaces: ["ECID"] });
  }).then(function (r) {
    $("ecid").textContent = r.identity.ECID;
    return r.identity.ECID;
  });

  $("earn-250").addEventListener("click", function () { earn(250).catch(function () {}); });
  $("earn-1000").addEventListener("click", function () { earn(1000).catch(function () {}); });
  $("level-up").addEventListener("click", function () {
    member.level = LEVELS[Math.min(LEVELS.length - 1, LEVELS.indexOf(member.level) + 1)];
    render();
    send("loyaltyLevelUpdate", 0).catch(function () {});
  });
  // A level outside the schema's enum: the Edge Network accepts it (it does not validate XDM);
  // Platform files it in a failed batch of the dataset, as the console's Records tab shows.
  $("invalid").addEventListener("click", function () {
    send("loyaltyLevelUpdate", 0, { loyaltyLevel: "Bronze" }).catch(function () {});
  });
  // documentUnloading: the Web SDK sends with navigator.sendBeacon to /ee/v1/collect
  $("leave").addEventListener("click", function () {
    member.points += 50;
    send("loyaltyBalanceUpdate", 50, null, { documentUnloading: true }).catch(function () {});
    location.href = state.leaveTo || "about:blank";
  });
  function consent(general) {
    return window.alloy("setConsent", {
      consent: [{ standard: "Adobe", version: "1.0", value: { general: general } }]
    }).then(function () { $("consent").textContent = general; });
  }
  $("consent-out").addEventListener("click", function () { consent("out"); });
  $("consent-in").addEventListener("click", function () { consent("in"); });

  // for tests and the browser console
  window.demo = { ready: ready, send: send, earn: earn, consent: consent, config: cfg };

  $("shop").hidden = false;
  render();
})();
