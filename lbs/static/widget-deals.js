/*
 * lbs map widget, its deals: prices, end times and claims (loaded by widget.js from the same
 * place). A prepaid deal (payment "prepaid") is paid for online in an app, not claimed here:
 * its popup says so, with its refund terms, and offers no claim. A claim needs a user: the page makes an anonymous one (POST /v1/users) on the first
 * claim and keeps its token in localStorage ("lbs.userToken"), so that the vouchers stay the
 * same person's on the next visit; every claim carries an Idempotency-Key kept until it is
 * answered, so a retried claim never takes a second unit.
 */
(function () {
  "use strict";
  var TOKEN_KEY = "lbs.userToken";

  function escape(text) {
    var div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function money(minor, currency) {
    try {
      var format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency });
      return format.format(minor / Math.pow(10, format.resolvedOptions().maximumFractionDigits));
    } catch (e) {
      return (minor / 100).toFixed(2) + " " + currency;
    }
  }

  // A time as the merchant's clock shows it: "14:00 today", "23:00 tomorrow", "Tue 16 Dec, 23:00".
  function localTime(iso, timeZone) {
    var at = new Date(iso);
    try {
      var day = new Intl.DateTimeFormat("en-CA", { timeZone: timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
      var clock = new Intl.DateTimeFormat(undefined, { timeZone: timeZone, hour: "numeric", minute: "2-digit" });
      var today = day.format(new Date()), tomorrow = day.format(new Date(Date.now() + 864e5));
      if (day.format(at) === today) return clock.format(at) + " today";
      if (day.format(at) === tomorrow) return clock.format(at) + " tomorrow";
      return new Intl.DateTimeFormat(undefined, {
        timeZone: timeZone, weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit"
      }).format(at);
    } catch (e) {
      return iso.slice(0, 16).replace("T", " ");
    }
  }

  function discountText(deal) {
    return deal.discount_pct > 0 ? "−" + deal.discount_pct + " %" : "deal";
  }

  // --- claims: an anonymous user token kept by the page, one Idempotency-Key per claim ---

  var memoryToken = null;
  function storedToken() {
    try { return localStorage.getItem(TOKEN_KEY) || memoryToken; } catch (e) { return memoryToken; }
  }
  function keepToken(token) {
    memoryToken = token;
    try {
      if (token) localStorage.setItem(TOKEN_KEY, token); else localStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage refused (private mode, sandbox): this page's memory only */ }
  }

  function randomKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes); // randomUUID needs a secure context; this does not
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function call(url, method, headers) {
    return fetch(url, { method: method, headers: headers || {} }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return { status: r.status, body: body }; });
    });
  }

  // deal-not-claimable's reasons (docs/deals.md), as a customer would say them.
  var NOT_CLAIMABLE = {
    sold_out: "Sold out, sorry.", outside_window: "Not claimable at this hour.", paused: "Paused by the shop.",
    expired: "This deal has ended.", not_started: "This deal has not started yet."
  };

  function problemText(answer) {
    return NOT_CLAIMABLE[answer.body.reason] || answer.body.detail || answer.body.title ||
      "The server answered " + answer.status;
  }

  function Claims(api) {
    this.api = api;
    this.keys = {}; // deal id -> the key of a claim not yet answered: a retry must not claim twice
    this.vouchers = {}; // deal id -> the voucher this page got
  }
  Claims.prototype.token = function () {
    var held = storedToken();
    if (held) return Promise.resolve(held);
    return call(this.api + "/v1/users", "POST").then(function (a) {
      if (a.status !== 201) throw new Error(problemText(a));
      keepToken(a.body.token);
      return a.body.token;
    });
  };
  Claims.prototype.claim = function (dealId, retried) {
    var self = this;
    var key = this.keys[dealId] || (this.keys[dealId] = randomKey());
    return this.token().then(function (token) {
      var auth = { Authorization: "Bearer " + token };
      var headers = { Authorization: auth.Authorization, "Idempotency-Key": key };
      return call(self.api + "/v1/deals/" + dealId + "/claim", "POST", headers).then(function (a) {
        if (a.status === 401 && !retried) { keepToken(null); return self.claim(dealId, true); }
        if (a.status === 200 || a.status === 201) { delete self.keys[dealId]; return self.held(dealId, a.body); }
        if (a.status === 409 && /claim-limit-reached$/.test(a.body.type || "")) {
          delete self.keys[dealId];
          return call(self.api + "/v1/me/vouchers?status=issued&limit=100", "GET", auth).then(function (mine) {
            var found = (mine.body.items || []).filter(function (v) { return v.deal_id === dealId; })[0];
            if (!found) throw new Error(problemText(a));
            return self.held(dealId, found);
          });
        }
        if (a.status < 500) delete self.keys[dealId]; // refused, nothing written: a new try is a new claim
        throw new Error(problemText(a));
      });
    });
  };
  Claims.prototype.held = function (dealId, voucher) {
    this.vouchers[dealId] = voucher;
    return voucher;
  };


  function voucherHtml(voucher, timeZone) {
    return "<div class='lbs-voucher' role='status'>Your voucher<span class='lbs-code'>" + escape(voucher.code) +
      "</span><small>Show it at the counter" +
      (voucher.expires_at ? "; valid until " + escape(localTime(voucher.expires_at, timeZone)) : "") + "</small></div>";
  }

  // A prepaid deal is bought through the API's orders (docs/payments.md), which need a payment
  // client (Stripe.js) this widget does not carry; the server refuses it a free claim.
  function prepaidHtml(deal) {
    var terms = deal.refund_policy === "none" ? "no refunds" : "refundable until used";
    return "<div class='lbs-prepaid'>Pay ahead online: " + escape(money(deal.deal_price_minor, deal.currency)) +
      " · " + terms + "</div>";
  }

  function claimHtml(p, claims, sameOrigin) {
    if (p.deal.payment === "prepaid") return prepaidHtml(p.deal);
    var held = claims.vouchers[p.deal.id];
    if (held) return voucherHtml(held, p.timezone);
    if (sameOrigin) return "<button type='button' class='lbs-claim' data-deal='" + p.deal.id + "'>Claim voucher</button>";
    // A write to another origin carries no CORS headers: claim on the server's own map page.
    var url = claims.api + "/map?lat=" + p.lat + "&lon=" + p.lon + "&radius=150&merchant=" + p.id;
    return "<a class='lbs-claim' target='_blank' rel='noopener' href='" + escape(url) + "'>Claim voucher ↗</a>";
  }

  function dealHtml(p, claims, sameOrigin) {
    var d = p.deal;
    var price = "<span class='lbs-price'>" + escape(money(d.deal_price_minor, d.currency)) + "</span>";
    if (d.list_price_minor > d.deal_price_minor) {
      price += "<s class='lbs-list-price'>" + escape(money(d.list_price_minor, d.currency)) + "</s>" +
        "<span class='lbs-discount'>" + escape(discountText(d)) + "</span>";
    }
    var ends = (d.payment === "prepaid" ? "On sale until " : "Claimable until ") + escape(localTime(d.ends_at, p.timezone));
    if (d.stock_left != null && d.stock_left <= 20) ends += " · " + d.stock_left + " left";
    return "<div class='lbs-deal'><div class='lbs-deal-title'>" + escape(d.title) + "</div><div>" + price +
      "</div><div class='lbs-ends'>" + ends + "</div><div class='lbs-claim-area'>" +
      claimHtml(p, claims, sameOrigin) + "</div></div>";
  }

  window.lbsWidgetDeals = {
    Claims: Claims, dealHtml: dealHtml, voucherHtml: voucherHtml, localTime: localTime, discountText: discountText
  };
})();
