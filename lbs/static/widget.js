/*
 * lbs map widget: merchants and deals of an lbs API on a Leaflet map.
 *
 *   <div data-lbs-map data-api="https://lbs.example" data-lat="60.1699" data-lon="24.9384"
 *        data-radius="1000"></div>
 *   <script src="https://lbs.example/widget.js"></script>
 *
 * Optional: data-tiles="https://{s}.tile.example/{z}/{x}/{y}.png" (a base map; without
 * one, or when it cannot be reached, markers still show on a plain background),
 * data-height="400px". Leaflet (vendored, lbs/static/leaflet) loads from the same place
 * as this script: nothing comes from a CDN.
 *
 * Each map element gets `lbsMap` (the Leaflet map) and `data-lbs-state`: "loading", then
 * "ready" with `data-lbs-shown` (markers or clusters drawn) after every refresh.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? script.src.replace(/widget\.js(\?.*)?$/, "") : "/";
  var ATTRIBUTION = "© OpenStreetMap contributors";
  var CLUSTER_BELOW_ZOOM = 15;
  var PAGE = 100;

  function loadLeaflet(done) {
    if (window.L) return done();
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = base + "static/leaflet/leaflet.css";
    document.head.appendChild(css);
    var js = document.createElement("script");
    js.src = base + "static/leaflet/leaflet.js";
    js.onload = done;
    document.head.appendChild(js);
  }

  function addStyles() {
    var style = document.createElement("style");
    style.textContent =
      ".lbs-marker{background:#1f6feb;color:#fff;border-radius:50%;border:2px solid #fff;" +
      "box-shadow:0 0 2px #000;width:14px;height:14px;position:relative}" +
      ".lbs-marker .lbs-badge{position:absolute;top:-10px;left:9px;background:#d1242f;color:#fff;" +
      "font:bold 10px sans-serif;border-radius:6px;padding:0 3px}" +
      ".lbs-cluster{background:rgba(31,111,235,.85);color:#fff;border-radius:50%;text-align:center;" +
      "font:bold 12px/34px sans-serif;width:34px;height:34px;border:2px solid #fff}" +
      ".lbs-cluster .lbs-badge{display:block;font:bold 9px sans-serif;color:#ffd33d;margin-top:-26px}" +
      ".lbs-near-me{background:#fff;border:1px solid #999;padding:4px 8px;cursor:pointer;font:12px sans-serif}" +
      ".lbs-note{background:rgba(255,255,255,.85);padding:2px 6px;font:12px sans-serif}";
    document.head.appendChild(style);
  }

  function escape(text) {
    var div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function metres(a, b) {
    var r = 6371008.8, rad = Math.PI / 180;
    var dLat = (b.lat - a.lat) * rad, dLon = (b.lng - a.lng) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * r * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function wrap(lon) {
    return ((((lon + 180) % 360) + 360) % 360) - 180;
  }

  function bboxOf(bounds) {
    var west = bounds.getWest(), east = bounds.getEast();
    var south = Math.max(-90, bounds.getSouth()), north = Math.min(90, bounds.getNorth());
    if (east - west >= 360) { west = -180; east = 180; } else { west = wrap(west); east = wrap(east); }
    return [west, south, east, north].map(function (v) { return v.toFixed(6); }).join(",");
  }

  function popupHtml(p, from) {
    var lines = ["<strong>" + escape(p.name) + "</strong>", escape(p.category.replace(/_/g, " "))];
    if (p.open_now === true) {
      lines.push("Open now" + (p.closes_at ? ", closes at " + escape(p.closes_at.slice(11, 16)) : ""));
    } else if (p.open_now === false) {
      lines.push("Closed" + (p.next_open_at ? ", opens " + escape(p.next_open_at.slice(0, 16).replace("T", " ")) : ""));
    }
    if (p.deal) lines.push("Deal: " + escape(p.deal.title));
    lines.push(Math.round(metres(from, L.latLng(p.lat, p.lon))) + " m away");
    if (p.attribution) lines.push("<small>" + escape(p.attribution) + "</small>");
    return lines.join("<br>");
  }

  function init(el) {
    var api = (el.getAttribute("data-api") || base).replace(/\/$/, "");
    var lat = parseFloat(el.getAttribute("data-lat") || "60.1699");
    var lon = parseFloat(el.getAttribute("data-lon") || "24.9384");
    var radius = parseFloat(el.getAttribute("data-radius") || "1000");
    if (el.getAttribute("data-height")) el.style.height = el.getAttribute("data-height");
    else if (!el.clientHeight) el.style.height = "400px";
    el.setAttribute("data-lbs-state", "loading");
    var map = L.map(el, { worldCopyJump: true });
    el.lbsMap = map;
    map.fitBounds(L.latLng(lat, lon).toBounds(2 * radius));
    var tiles = el.getAttribute("data-tiles");
    if (tiles) L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
    map.attributionControl.addAttribution(ATTRIBUTION);
    var from = L.latLng(lat, lon);
    var layer = L.layerGroup().addTo(map);
    var note = L.control({ position: "bottomleft" });
    note.onAdd = function () { this._div = L.DomUtil.create("div", "lbs-note"); return this._div; };
    note.addTo(map);

    var nearMe = L.control({ position: "topright" });
    nearMe.onAdd = function () {
      var button = L.DomUtil.create("button", "lbs-near-me");
      button.type = "button";
      button.textContent = "Near me";
      L.DomEvent.on(button, "click", function (e) {
        L.DomEvent.stop(e);
        if (!navigator.geolocation) return;
        navigator.geolocation.getCurrentPosition(function (pos) {
          from = L.latLng(pos.coords.latitude, pos.coords.longitude);
          map.setView(from, Math.max(map.getZoom(), 16));
        });
      });
      return button;
    };
    nearMe.addTo(map);

    var generation = 0;
    function render(body, clustered) {
      layer.clearLayers();
      body.features.forEach(function (f) {
        var at = L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]);
        var p = f.properties;
        if (clustered) {
          var badge = p.with_deals ? "<span class='lbs-badge'>" + p.with_deals + " %</span>" : "";
          var icon = L.divIcon({ className: "", html: "<div class='lbs-cluster'>" + badge + p.count + "</div>", iconSize: [38, 38] });
          L.marker(at, { icon: icon, title: p.count + " places" })
            .on("click", function () { map.setView(at, map.getZoom() + 2); })
            .addTo(layer);
        } else {
          var html = "<div class='lbs-marker' data-id='" + f.id + "'>" + (p.deal ? "<span class='lbs-badge'>%</span>" : "") + "</div>";
          L.marker(at, { icon: L.divIcon({ className: "", html: html, iconSize: [18, 18] }), title: p.name })
            .bindPopup(function () { return popupHtml(p, from); })
            .addTo(layer);
        }
      });
      var shown = body.features.length;
      note._div.textContent = body.total + " places";
      el.setAttribute("data-lbs-shown", String(shown));
      el.setAttribute("data-lbs-state", "ready");
    }

    function get(query) {
      return fetch(api + "/v1/merchants?bbox=" + bboxOf(map.getBounds()) + query)
        .then(function (r) { return r.json(); });
    }

    function refresh() {
      var zoom = map.getZoom();
      var clusters = "&cluster=true&zoom=" + zoom;
      var mine = ++generation;
      el.setAttribute("data-lbs-state", "loading");
      var done = function (clustered) {
        return function (body) { if (mine === generation) render(body, clustered); };
      };
      var failed = function () { el.setAttribute("data-lbs-state", "error"); };
      if (zoom < CLUSTER_BELOW_ZOOM) {
        get(clusters).then(done(true)).catch(failed);
        return;
      }
      // Close in, markers; but more than a page of them in view is a crowd: clusters.
      get("&limit=" + PAGE).then(function (body) {
        if (body.total > body.features.length) return get(clusters).then(done(true));
        done(false)(body);
      }).catch(failed);
    }

    var timer = null;
    // Marked at once, so that nobody reads the old markers as the new place's.
    map.on("movestart", function () { el.setAttribute("data-lbs-state", "loading"); });
    map.on("moveend", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 250);
    });
    refresh();
  }

  function start() {
    addStyles();
    loadLeaflet(function () {
      Array.prototype.forEach.call(document.querySelectorAll("[data-lbs-map]"), init);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
