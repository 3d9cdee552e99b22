/*
 * lbs map widget: merchants and deals of an lbs API on a Leaflet map.
 *
 *   <div data-lbs-map data-api="https://lbs.example" data-lat="60.1699" data-lon="24.9384"
 *        data-radius="1000"></div>
 *   <script src="https://lbs.example/widget.js"></script>
 *
 * Optional: data-tiles="https://{s}.tile.example/{z}/{x}/{y}.png" (a base map; without
 * one, or when it cannot be reached, markers still show on a plain background),
 * data-height="400px", data-merchant="ID" (open that merchant's popup once it is drawn).
 * Leaflet (vendored, lbs/static/leaflet) and widget.css load from the same place as this
 * script: nothing comes from a CDN.
 *
 * Each map element gets `lbsMap` (the Leaflet map) and `data-lbs-state`: "loading", then
 * "ready" with `data-lbs-shown` (markers or clusters drawn) after every refresh.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? script.src.replace(/widget\.js(\?.*)?$/, "") : "/";
  var ATTRIBUTION = "© OpenStreetMap contributors";
  var CLUSTER_BELOW_ZOOM = 15; // below it, always clusters
  var MARKERS_FROM_ZOOM = 17; // from it, every merchant in view, a page at a time, up to:
  var MAX_MARKERS = 500;
  var PAGE = 100; // the API's largest page
  var deals; // widget-deals.js: prices, end times, claims

  function addScript(path, done) {
    var js = document.createElement("script");
    js.src = base + path;
    js.onload = done;
    document.head.appendChild(js);
  }

  function loadAssets(done) {
    var waiting = 3;
    var one = function () { if (--waiting === 0) done(); };
    var css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = base + "static/widget.css";
    css.onload = css.onerror = one; // labels are measured with these styles
    document.head.appendChild(css);
    if (window.lbsWidgetDeals) one(); else addScript("static/widget-deals.js", one);
    if (window.L) return one();
    var leafletCss = document.createElement("link");
    leafletCss.rel = "stylesheet";
    leafletCss.href = base + "static/leaflet/leaflet.css";
    document.head.appendChild(leafletCss);
    addScript("static/leaflet/leaflet.js", one);
  }

  function escape(text) {
    var div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  var ruler = document.createElement("canvas").getContext("2d");
  function textWidth(text, font) {
    ruler.font = font;
    return Math.ceil(ruler.measureText(text).width);
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

  function popupHtml(p, from, claims, sameOrigin) {
    var meta = escape(p.category.replace(/_/g, " ")) + " · " + Math.round(metres(from, L.latLng(p.lat, p.lon))) + " m away";
    var lines = ["<div class='lbs-name'>" + escape(p.name) + "</div>", "<div class='lbs-meta'>" + meta + "</div>"];
    if (p.open_now === true) {
      lines.push("<div>Open now" + (p.closes_at ? ", closes " + escape(deals.localTime(p.closes_at, p.timezone)) : "") + "</div>");
    } else if (p.open_now === false) {
      lines.push("<div>Closed" + (p.next_open_at ? ", opens " + escape(deals.localTime(p.next_open_at, p.timezone)) : "") + "</div>");
    }
    if (p.deal) lines.push(deals.dealHtml(p, claims, sameOrigin));
    if (p.attribution) lines.push("<small>" + escape(p.attribution) + "</small>");
    return "<div class='lbs-popup' data-id='" + p.id + "'>" + lines.join("") + "</div>";
  }

  // --- icons: every label measured, so that its marker's box holds it ---

  var BADGE_FONT = "bold 11px system-ui, sans-serif";
  var DEALS_FONT = "bold 10px system-ui, sans-serif";

  function merchantIcon(id, deal, cell) {
    var attrs = id != null ? " data-id='" + id + "'" : " data-cell='" + cell + "'";
    if (!deal) {
      return L.divIcon({ className: "lbs-icon", html: "<div class='lbs-marker'" + attrs + "><span class='lbs-dot'></span></div>",
        iconSize: [20, 20], iconAnchor: [10, 10], popupAnchor: [0, -8] });
    }
    var text = deal === true ? "deal" : deals.discountText(deal);
    var width = 14 + 12 + textWidth(text, BADGE_FONT) + 2;
    return L.divIcon({
      className: "lbs-icon",
      html: "<div class='lbs-marker lbs-has-deal'" + attrs + "><span class='lbs-badge'>" + escape(text) +
        "</span><span class='lbs-dot'></span></div>",
      iconSize: [width, 20], iconAnchor: [10, 10], popupAnchor: [0, -8]
    });
  }

  function clusterIcon(count, withDeals) {
    var disc = Math.round(28 + 10 * Math.log10(count)) + (String(count).length > 4 ? 8 : 0);
    var pillText = withDeals ? withDeals + (withDeals === 1 ? " deal" : " deals") : "";
    var pill = pillText ? textWidth(pillText, DEALS_FONT) + 16 : 0;
    var width = Math.max(disc, pill), height = disc + (pillText ? 8 : 0);
    var html = "<div class='lbs-cluster' style='width:" + disc + "px;height:" + disc + "px;left:" + (width - disc) / 2 +
      "px'><span class='lbs-count'>" + count + "</span></div>";
    if (pillText) html += "<div class='lbs-cluster-deals' style='width:" + pill + "px;left:" + (width - pill) / 2 + "px'>" + pillText + "</div>";
    return L.divIcon({ className: "lbs-icon", html: html, iconSize: [width, height], iconAnchor: [width / 2, disc / 2] });
  }

  function init(el) {
    var api = (el.getAttribute("data-api") || base).replace(/\/$/, "");
    var sameOrigin = new URL(api, location.href).origin === location.origin;
    var claims = new deals.Claims(api);
    var lat = parseFloat(el.getAttribute("data-lat") || "60.1699");
    var lon = parseFloat(el.getAttribute("data-lon") || "24.9384");
    var radius = parseFloat(el.getAttribute("data-radius") || "1000");
    var toOpen = el.getAttribute("data-merchant");
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

    // Claim buttons: listened to on the popup's container, which outlives its content.
    map.on("popupopen", function (e) {
      var box = e.popup.getElement();
      if (box.lbsWired) return;
      box.lbsWired = true;
      box.addEventListener("click", function (ev) {
        var button = ev.target.closest && ev.target.closest("button.lbs-claim");
        if (!button) return;
        var dealId = parseInt(button.getAttribute("data-deal"), 10);
        var area = button.parentNode;
        var zone = box.querySelector(".lbs-popup").lbsTimeZone;
        button.disabled = true;
        button.textContent = "Claiming…";
        claims.claim(dealId).then(function (voucher) {
          area.innerHTML = deals.voucherHtml(voucher, zone);
        }, function (error) {
          button.disabled = false;
          button.textContent = "Claim voucher";
          var old = area.querySelector(".lbs-problem");
          if (old) old.remove();
          area.insertAdjacentHTML("beforeend", "<div class='lbs-problem' role='alert'>" + escape(error.message) + "</div>");
        });
      });
    });

    // Drawn on every opening, so that a voucher claimed since shows instead of the button.
    function popupContent(p) {
      return function () {
        var div = document.createElement("div");
        div.innerHTML = popupHtml(p, from, claims, sameOrigin);
        div.firstChild.lbsTimeZone = p.timezone;
        return div.firstChild;
      };
    }

    // A cluster of one: its point is the merchant's own position; what it is, only on a click.
    function singlePopup(marker, at) {
      marker.bindPopup("Loading…", { minWidth: 200 });
      marker.once("popupopen", function () {
        var d = 2e-6;
        var box = [wrap(at.lng - d), at.lat - d, wrap(at.lng + d), at.lat + d].map(function (v) { return v.toFixed(6); });
        fetch(api + "/v1/merchants?limit=10&bbox=" + box.join(",")).then(function (r) { return r.json(); }).then(function (body) {
          var near = body.features.slice().sort(function (a, b) {
            return metres(at, L.latLng(a.properties.lat, a.properties.lon)) - metres(at, L.latLng(b.properties.lat, b.properties.lon));
          })[0];
          if (!near) { marker.setPopupContent("Gone since the map was drawn"); return; }
          marker.setPopupContent(popupContent(near.properties));
        }).catch(function () { marker.setPopupContent("Could not reach the server"); });
      });
    }

    // The marker whose popup is open outlives a refresh (a popup's own autopan moves the map
    // and so refreshes it): removing the marker would close the popup under the reader.
    var opened = null, drawn = {};
    function add(marker, key) {
      marker.lbsKey = key;
      drawn[key] = true;
      if (opened && opened.lbsKey === key) return opened;
      marker.on("popupopen", function () { opened = marker; });
      marker.on("popupclose", function () {
        if (opened === marker) opened = null;
        if (!drawn[marker.lbsKey]) layer.removeLayer(marker);
      });
      return marker.addTo(layer);
    }

    var generation = 0;
    function render(features, total, clustered) {
      layer.eachLayer(function (marker) { if (marker !== opened) layer.removeLayer(marker); });
      drawn = {};
      var byId = {};
      var withDeals = 0;
      features.forEach(function (f) {
        var at = L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0]);
        var p = f.properties;
        if (clustered && p.count > 1) {
          withDeals += p.with_deals;
          var title = p.count + " places" + (p.with_deals ? ", " + p.with_deals + " with a deal running" : "") + ": zoom in";
          add(L.marker(at, { icon: clusterIcon(p.count, p.with_deals), title: title }), "c" + f.id)
            .on("click", function () { map.setView(at, Math.min(map.getZoom() + 2, map.getMaxZoom())); });
        } else if (clustered) {
          withDeals += p.with_deals;
          var single = L.marker(at, { icon: merchantIcon(null, p.with_deals > 0, f.id), title: "1 place" });
          if (add(single, "s" + f.id) === single) singlePopup(single, at);
        } else {
          if (p.deal) withDeals += 1;
          var marker = L.marker(at, { icon: merchantIcon(f.id, p.deal, null), title: p.name, zIndexOffset: p.deal ? 1000 : 0 });
          if (add(marker, "m" + f.id) === marker) marker.bindPopup(popupContent(p), { minWidth: 200 });
          byId[f.id] = opened && opened.lbsKey === "m" + f.id ? opened : marker;
        }
      });
      note._div.innerHTML = "<b>" + total + "</b> places in view" +
        (withDeals ? "<span class='lbs-key' style='background:#b91c1c'></span>" + withDeals + " with deals" : "");
      el.setAttribute("data-lbs-shown", String(features.length));
      el.setAttribute("data-lbs-state", "ready");
      if (toOpen && byId[toOpen]) { byId[toOpen].openPopup(); toOpen = null; }
    }

    function refresh() {
      var zoom = map.getZoom();
      var box = bboxOf(map.getBounds());
      var get = function (query) {
        return fetch(api + "/v1/merchants?bbox=" + box + query).then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        });
      };
      var mine = ++generation;
      el.setAttribute("data-lbs-state", "loading");
      var draw = function (clustered) {
        return function (body) { if (mine === generation) render(body.features, body.total, clustered); };
      };
      var clusters = function () { return get("&cluster=true&zoom=" + zoom).then(draw(true)); };
      var failed = function () { if (mine === generation) el.setAttribute("data-lbs-state", "error"); };
      if (zoom < CLUSTER_BELOW_ZOOM) return clusters().catch(failed);
      // Close in, every merchant in view, or none: a page chosen by id is a biased sample of a crowd.
      get("&limit=" + PAGE).then(function (first) {
        if (first.total <= first.features.length) return draw(false)(first);
        if (zoom < MARKERS_FROM_ZOOM || first.total > MAX_MARKERS) return clusters();
        var features = first.features;
        var next = function (body) {
          features = features.concat(body === first ? [] : body.features);
          if (!body.next_cursor || mine !== generation) return draw(false)({ features: features, total: first.total });
          return get("&limit=" + PAGE + "&cursor=" + encodeURIComponent(body.next_cursor)).then(next);
        };
        return next(first);
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
    loadAssets(function () {
      deals = window.lbsWidgetDeals;
      Array.prototype.forEach.call(document.querySelectorAll("[data-lbs-map]"), init);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
