/*
 * lbs merchant page (/merchant): a shop's funnel, hours, deals, CSV and reviews.
 *
 * The merchant pastes an API key. It is kept in sessionStorage ("lbs.merchantKey": this tab
 * only, gone when it closes), never in the URL, and sent only to this server as
 * "Authorization: Bearer …". Everything is read from the API:
 *   GET /v1/merchants/me                         the shop (its id, for its reviews)
 *   GET /v1/merchant/deals                       the deals to choose from
 *   GET /v1/merchant/insights?from&to&deal_id&by=hour   the numbers per deal and in total
 *   GET /v1/merchant/insights/chart.svg?kind=funnel|by_hour&measure=…&…   the charts, inline
 *   GET /v1/merchant/insights.csv?…&by=day        the download, saved from a blob
 *   GET /v1/merchants/{id}/reviews, POST /v1/merchant/reviews/{id}/reply
 * Text from the API is only ever set as textContent; the charts are parsed as SVG (the
 * server escapes them; scripts and handlers are dropped all the same). No inline script:
 * the page's Content-Security-Policy allows this file only.
 *
 * #merchant-page data-state: "locked" (no key), "loading", "ready" or "error";
 * #reviews data-state: "loading", "ready" or "error".
 */
(function () {
  "use strict";
  const KEY = "lbs.merchantKey";
  const HIDDEN = "hidden (< 5 people)";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const REVIEWS_PAGE = 10;
  const COLUMNS = [
    ["impressions", count], ["clicks", count], ["claims", count], ["redemptions", count],
    ["reviews", count], ["revenue_minor", money], ["discount_minor", money], ["roi", percent],
  ];
  const $ = (id) => document.getElementById(id);
  const page = $("merchant-page");
  let shop = null; // GET /v1/merchants/me
  let shown = null; // the query the numbers on the page answer
  let reviewsCursor = null;

  function storedKey() { return sessionStorage.getItem(KEY); }

  function say(text, isProblem) {
    $("status").textContent = text;
    $("status").classList.toggle("problem", Boolean(isProblem));
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // A request to this server; a 4xx/5xx becomes an Error with the problem's detail.
  async function call(path, options) {
    const opts = options || {};
    const headers = Object.assign({}, opts.headers);
    if (opts.auth !== false) headers.Authorization = "Bearer " + storedKey();
    const response = await fetch(path, {
      method: opts.method || "GET", headers: headers, body: opts.body, cache: "no-store",
      credentials: "omit", referrerPolicy: "no-referrer",
    });
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try {
        const problem = await response.json();
        detail = problem.detail || problem.title || detail;
      } catch (ignored) { /* not problem+json: the status says it */ }
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return response;
  }

  // ---- the key --------------------------------------------------------------------------
  function lock(message) {
    sessionStorage.removeItem(KEY);
    shop = null;
    $("dashboard").hidden = true;
    $("key-section").hidden = false;
    page.dataset.state = "locked";
    say(message || "", Boolean(message));
  }

  async function unlock() {
    page.dataset.state = "loading";
    say("Loading…");
    try {
      shop = await (await call("/v1/merchants/me")).json();
    } catch (error) {
      if (error.status === 401 || error.status === 403) {
        lock("That key was not accepted: " + error.message);
      } else {
        page.dataset.state = "error";
        say("Your shop could not be read: " + error.message, true);
      }
      return;
    }
    $("key-section").hidden = true;
    $("dashboard").hidden = false;
    $("shop-name").textContent = shop.name;
    try {
      fillDeals((await (await call("/v1/merchant/deals")).json()).items);
    } catch (error) { /* the numbers of all deals still show */ }
    loadReviews(false);
    await loadNumbers();
  }

  function fillDeals(deals) {
    const select = $("deal");
    select.replaceChildren(make("option", null, "All deals"));
    select.firstChild.value = "";
    for (const deal of deals) {
      const option = make("option", null, deal.title + (deal.state === "live" ? "" : " (" + deal.state.replace("_", " ") + ")"));
      option.value = String(deal.id);
      select.append(option);
    }
  }

  // ---- the numbers ----------------------------------------------------------------------
  function query() {
    const params = new URLSearchParams();
    if ($("from").value) params.set("from", $("from").value);
    if ($("to").value) params.set("to", $("to").value);
    if ($("deal").value) params.set("deal_id", $("deal").value);
    return params;
  }

  function withParams(path, params, extra) {
    const all = new URLSearchParams(params);
    for (const [name, value] of Object.entries(extra)) all.set(name, value);
    return path + "?" + all.toString();
  }

  async function loadNumbers() {
    const params = query();
    page.dataset.state = "loading";
    $("range-form").querySelector("button").disabled = true;
    say("Loading your numbers…");
    try {
      const [insights, funnel, hours] = await Promise.all([
        call(withParams("/v1/merchant/insights", params, { by: "hour" })).then((r) => r.json()),
        call(withParams("/v1/merchant/insights/chart.svg", params, { kind: "funnel" })).then((r) => r.text()),
        hourChart(params),
      ]);
      showSvg($("funnel-chart"), funnel);
      showSvg($("hour-chart"), hours);
      showTable(insights);
      $("from").value = insights.from;
      $("to").value = insights.to;
      $("range-said").textContent =
        "From " + insights.from + " to " + insights.to + ", days and hours in " + insights.timezone + " time.";
      shown = params;
      shown.set("from", insights.from);
      shown.set("to", insights.to);
      page.dataset.state = "ready";
      say("");
    } catch (error) {
      if (error.status === 401) return lock("The key stopped working: " + error.message);
      page.dataset.state = "error";
      say("The numbers could not be read: " + error.message, true);
    } finally {
      $("range-form").querySelector("button").disabled = false;
    }
  }

  function hourChart(params) {
    const measure = { kind: "by_hour", measure: $("hour-measure").value };
    return call(withParams("/v1/merchant/insights/chart.svg", params, measure)).then((r) => r.text());
  }

  async function showHours() {
    if (!shown) return;
    page.dataset.state = "loading";
    try {
      showSvg($("hour-chart"), await hourChart(shown));
      page.dataset.state = "ready";
    } catch (error) {
      page.dataset.state = "error";
      say("The chart could not be read: " + error.message, true);
    }
  }

  // The server's SVG, drawn inline so that it scales with the page and its text is text.
  function showSvg(container, text) {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.namespaceURI !== SVG_NS || svg.localName !== "svg" || doc.getElementsByTagName("parsererror").length) {
      throw new Error("the chart is not SVG");
    }
    for (const node of svg.querySelectorAll("script, foreignObject")) node.remove();
    for (const node of [svg, ...svg.querySelectorAll("*")]) {
      for (const attribute of [...node.attributes]) {
        if (/^on/i.test(attribute.name)) node.removeAttribute(attribute.name);
      }
    }
    container.replaceChildren(document.importNode(svg, true));
  }

  function count(value) { return value.toLocaleString(); }

  function money(minor, currency) {
    if (!currency) return count(minor);
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency: currency });
    return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
  }

  function percent(ratio) { return Math.round(ratio * 100).toLocaleString() + " %"; }

  function tableRow(label, metrics, currency) {
    const row = make("tr");
    const name = make("th", null, label);
    name.scope = "row";
    row.append(name);
    if (metrics.suppressed) { // every number of the row hidden: said once
      const cell = make("td", "hidden", HIDDEN);
      cell.colSpan = COLUMNS.length;
      row.append(cell);
      return row;
    }
    for (const [field, format] of COLUMNS) {
      const value = metrics[field];
      const cell = make("td", null, value === null || value === undefined ? "–" : format(value, currency));
      cell.dataset.field = field;
      row.append(cell);
    }
    return row;
  }

  function showTable(insights) {
    const table = $("deal-table");
    const rows = insights.deals.map((deal) => {
      const row = tableRow(deal.title, deal, deal.currency);
      row.dataset.dealId = String(deal.deal_id);
      return row;
    });
    table.tBodies[0].replaceChildren(...rows);
    // Money adds up only within one currency: the API says which, or null (no money in total).
    const total = tableRow("All deals", insights.total, insights.currency);
    total.id = "total-row";
    table.tFoot.replaceChildren(total);
  }

  async function downloadCsv(event) {
    event.preventDefault();
    if (!shown) return;
    try {
      const response = await call(withParams("/v1/merchant/insights.csv", shown, { by: "day" }));
      const named = /filename="([^"\/]+)"/.exec(response.headers.get("Content-Disposition") || "");
      const url = URL.createObjectURL(await response.blob());
      const link = make("a");
      link.href = url;
      link.download = named ? named[1] : "insights.csv";
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000); // after the browser has taken it
    } catch (error) {
      say("The CSV could not be read: " + error.message, true);
    }
  }

  // ---- reviews --------------------------------------------------------------------------
  async function loadReviews(more) {
    const list = $("reviews");
    list.dataset.state = "loading";
    const params = new URLSearchParams({ sort: "newest", limit: String(REVIEWS_PAGE) });
    if (more && reviewsCursor) params.set("cursor", reviewsCursor);
    try {
      const response = await call("/v1/merchants/" + shop.id + "/reviews?" + params.toString(), { auth: false });
      const body = await response.json();
      if (!more) {
        list.replaceChildren();
        $("rating").textContent = body.rating
          ? body.rating.average.toFixed(1) + " ★ from " + body.rating.count.toLocaleString() +
            (body.rating.count === 1 ? " review" : " reviews") + " · " +
            Math.round(body.rating.recommend * 100) + " % recommend (at least)"
          : "";
      }
      for (const review of body.items) list.append(reviewItem(review));
      reviewsCursor = body.next_cursor || null;
      $("more-reviews").hidden = !reviewsCursor;
      $("reviews-empty").hidden = list.children.length > 0;
      list.dataset.state = "ready";
    } catch (error) {
      list.replaceChildren(make("li", "problem", "Reviews could not be read: " + error.message));
      list.dataset.state = "error";
    }
  }

  function reviewItem(review) {
    const item = make("li", "review");
    item.dataset.id = String(review.id);
    const stars = make("div", "stars", "★".repeat(review.rating) + "☆".repeat(5 - review.rating));
    stars.setAttribute("role", "img");
    stars.setAttribute("aria-label", review.rating + " out of 5 stars");
    item.append(stars, make("p", "review-text", review.text));
    item.append(make("div", "verified", review.verified_text));
    if (review.reply) {
      item.append(make("div", "reply", "Your reply: " + review.reply.text));
    } else {
      item.append(replyForm(review.id, item));
    }
    return item;
  }

  function replyForm(reviewId, item) {
    const form = make("form", "reply-form");
    const box = make("textarea");
    box.id = "reply-" + reviewId;
    box.required = true;
    box.maxLength = 2000;
    const label = make("label", null, "Reply (once; everyone sees it)");
    label.htmlFor = box.id;
    const send = make("button", null, "Send reply");
    send.type = "submit";
    const problem = make("p", "problem");
    form.append(label, box, send, problem);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      send.disabled = true;
      try {
        const response = await call("/v1/merchant/reviews/" + reviewId + "/reply", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text: box.value }),
        });
        const saved = await response.json();
        form.replaceWith(make("div", "reply", "Your reply: " + saved.reply.text));
      } catch (error) {
        problem.textContent = error.message;
        send.disabled = false;
      }
    });
    return form;
  }

  // ---- start ----------------------------------------------------------------------------
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    $("api-key").value = "";
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    unlock();
  });
  $("forget-key").addEventListener("click", () => lock());
  $("range-form").addEventListener("submit", (event) => { event.preventDefault(); loadNumbers(); });
  $("csv-link").addEventListener("click", downloadCsv);
  $("hour-measure").addEventListener("change", showHours);
  $("more-reviews").addEventListener("click", () => loadReviews(true));
  if (storedKey()) unlock();
})();
