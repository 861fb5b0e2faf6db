// The police-liaison dashboard: a sign-in box, a live list of raised flags and a page that
// explains one flag. Plain JavaScript with no build step and no library; every text from the
// API is put on the page with textContent, never parsed as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "modsignal.token";
  const POLL_MS = 15000;
  const SVG = "http://www.w3.org/2000/svg";

  const CATEGORIES = {
    credible_threat: {
      name: "Credible threat",
      number: 1,
      text: "Category 1 of the guidelines: communications which may constitute credible threats of violence to the person or damage to property. The guidelines say that cases in categories 1 to 3 should be prosecuted robustly where they meet the test for prosecution.",
    },
    targeted_harassment: {
      name: "Targeting a particular person",
      number: 2,
      text: "Category 2 of the guidelines: communications which specifically target an individual or individuals and may constitute harassment or stalking. The guidelines say that cases in categories 1 to 3 should be prosecuted robustly where they meet the test for prosecution.",
    },
    court_order_breach: {
      name: "Breach of a court order",
      number: 3,
      text: "Category 3 of the guidelines: communications which may amount to a breach of a court order or a statutory prohibition, such as identifying a victim of a sexual offence. The guidelines say that cases in categories 1 to 3 should be prosecuted robustly where they meet the test for prosecution.",
    },
    communications_offence: {
      name: "Grossly offensive, indecent, obscene or false communication",
      number: 4,
      text: "Category 4 of the guidelines: communications which may be grossly offensive, indecent, obscene or false. The guidelines set a high threshold for these; modsignal raises such a flag only when the weight of the factors below reaches that threshold.",
    },
  };

  // Plain names of the factors the risk model writes (crates/modsignal-core/src/model.rs).
  const FACTORS = {
    category: "The category of the message",
    label_retracted: "Every label for it was withdrawn",
    label_confidence: "How sure the people or tools that labelled it were",
    exposure: "How long it stayed up",
    swift_removal: "It was removed quickly",
    restricted: "It was restricted but stayed visible to some (partial credit)",
    reach: "How many people it reached (times seen where the platform reports it, else the audience)",
    // Flags written before reach became one factor still carry these three.
    audience: "How many people it could reach",
    reshares: "Others reshared it",
    impressions: "How many times it was seen",
    engagement: "Quotes and replies",
    limited_audience: "It had a small audience",
    targeted: "It was aimed at a particular person",
    reported_by_target: "The person it targeted reported it",
    reports: "Others reported it (a reason to look, not evidence of harm)",
    significant_impact: "Significant impact on the victim",
    hate: "Hostility on grounds of race, religion, disability, sexual orientation or transgender identity",
    encouragement: "It encouraged others",
    remorse: "The sender showed remorse",
    tolerable: "Possibly within what an open and diverse society tolerates",
    repeat: "Repeated conduct",
    mobbing: "Part of a pile-on (virtual mobbing)",
    pile_on: "Others joined in on it (a pile-on on the person it targets)",
    course_of_conduct: "A course of conduct: several messages from the sender at the same person",
    course_after_sanction: "The course went on after the platform suspended the sender",
    course_after_report: "The course went on after the person reported it",
    course_after_removal: "The course went on after the platform took one of its messages down",
    reshared_after_removal: "Reshared after the message had been taken down",
    minor: "The sender is under 18",
  };

  const REMOVED_BY = {
    author: "by the person who posted it",
    platform: "by the platform",
    legal: "under a legal order",
    unknown: "by someone the platform did not name (the person who posted it or a moderator)",
  };

  const REMOVAL = {
    deleted: "it was deleted",
    blocked: "access to it was blocked for everyone (withheld)",
    account: "the account was suspended, closed or taken down",
    with_original: "it went down with the message it reshared",
  };

  const $ = (id) => document.getElementById(id);

  const state = {
    session: null,
    flags: [],
    nextCursor: null,
    pollTimer: null,
    loads: 0,
    listRequest: 0,
    flagRequest: 0,
  };

  // --- Formatting -------------------------------------------------------------------------

  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function pad(n) {
    return String(n).padStart(2, "0");
  }

  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  }

  function fmtShortTime(ms) {
    const d = new Date(ms);
    return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function fmtDuration(secs) {
    secs = Math.max(0, Math.round(secs));
    const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24;
    const m = Math.floor(secs / 60) % 60, s = secs % 60;
    if (d > 0) return h > 0 ? `${plural(d, "day")} ${plural(h, "hour")}` : plural(d, "day");
    if (h > 0) return m > 0 ? `${plural(h, "hour")} ${plural(m, "minute")}` : plural(h, "hour");
    if (m > 0) return s > 0 ? `${plural(m, "minute")} ${plural(s, "second")}` : plural(m, "minute");
    return plural(s, "second");
  }

  function fmtCount(n) {
    return n === null || n === undefined ? "not known" : Number(n).toLocaleString("en-GB");
  }

  function categoryName(code) {
    const c = CATEGORIES[code];
    return c ? `${c.number}. ${c.name}` : code;
  }

  function subjectText(flag) {
    return flag.subject === "author" ? "The person who posted it" : "A person who reshared it";
  }

  function removedSeconds(exposure) {
    if (!exposure.removed_at) return null;
    return (Date.parse(exposure.removed_at) - Date.parse(exposure.posted_at)) / 1000;
  }

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  // --- Talking to the API -----------------------------------------------------------------

  class SignedOut extends Error {}

  async function api(path) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new SignedOut();
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (response.status === 401) throw new SignedOut();
    return response;
  }

  async function apiJson(path) {
    const response = await api(path);
    if (!response.ok) {
      const err = new Error(`The server answered ${response.status}`);
      err.status = response.status;
      throw err;
    }
    return response.json();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.session = null;
    state.flags = [];
    state.nextCursor = null;
    stopPolling();
    $("flag-rows").replaceChildren();
    $("signin-error").hidden = !message;
    $("signin-error").textContent = message || "";
    render();
  }

  function handleError(err, where) {
    if (err instanceof SignedOut) {
      signOut("Your session has ended or the access code was not accepted. Please sign in again.");
      return;
    }
    where.textContent = "The flags could not be loaded just now. The page will try again.";
  }

  // --- Sign-in ----------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-input").value = "";
    try {
      state.session = await apiJson("api/v1/session");
      $("signin-error").hidden = true;
      render();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      $("signin-error").hidden = false;
      $("signin-error").textContent = err instanceof SignedOut
        ? "That access code was not accepted. Check it and try again."
        : "The server could not be reached. Try again in a moment.";
    }
  }

  function showSession() {
    const s = state.session;
    $("session").hidden = !s;
    $("pseudonym-note").hidden = !(s && s.pseudonymised);
    if (s) {
      $("session-role").textContent = s.role === "liaison"
        ? "Signed in as a police liaison officer"
        : "Signed in as a trust and safety analyst";
      $("session-role").dataset.role = s.role;
    }
  }

  // --- The list ---------------------------------------------------------------------------

  function listQuery(cursor, limit) {
    const q = new URLSearchParams({ raised: "true", limit: String(limit) });
    const category = $("filter-category").value, track = $("filter-track").value;
    if (category) q.set("category", category);
    if (track) q.set("track", track);
    if (cursor) q.set("cursor", cursor);
    return `api/v1/flags?${q}`;
  }

  async function loadList(more) {
    const max = state.session ? state.session.max_page : 100;
    // A refresh reloads as many flags as are shown, so that "show older" pages stay put.
    const limit = more ? Math.min(100, max) : Math.min(Math.max(100, state.flags.length), max);
    const status = $("list-status");
    // Only the newest request may draw: a poll started before a filter changed is dropped.
    const request = ++state.listRequest;
    try {
      const page = await apiJson(listQuery(more ? state.nextCursor : null, limit));
      if (request !== state.listRequest) return;
      const flags = page.flags.map((s) => s.flag);
      state.flags = more ? state.flags.concat(flags) : flags;
      state.nextCursor = page.next_cursor;
      state.loads += 1;
      drawList();
      status.textContent = `${plural(state.flags.length, "raised flag")} shown. Updated ${fmtTime(new Date().toISOString())}.`;
      $("list-view").dataset.loads = String(state.loads);
    } catch (err) {
      if (request === state.listRequest) handleError(err, status);
    }
  }

  function drawList() {
    const rows = state.flags.map((f) => {
      const tr = el("tr", null, {
        "data-testid": "flag-row",
        "data-flag-id": f.flag_id,
        "data-category": f.category,
        "data-track": f.track,
        "data-raised": String(f.raised),
      });
      tr.append(el("td", fmtTime(f.at)));
      const name = el("td");
      name.append(el("a", categoryName(f.category), {
        href: `#/flag/${f.flag_id}`,
        "data-testid": "flag-link",
        // Every row's link names a category; a screen reader also hears whose flag and when.
        "aria-label": `${categoryName(f.category)}: flag of ${f.account}, last changed ${fmtTime(f.at)}`,
      }));
      tr.append(name);
      const who = el("td");
      who.append(el("span", subjectText(f)), el("br"), el("span", f.account, { class: "account", "data-testid": "row-account" }));
      tr.append(who);
      tr.append(el("td", `${fmtCount(f.reach.audience)} accounts`));
      tr.append(el("td", f.exposure.removed_at ? `No: down after ${fmtDuration(removedSeconds(f.exposure))}` : "Yes"));
      return tr;
    });
    $("flag-rows").replaceChildren(...rows);
    $("list-empty").hidden = state.flags.length > 0;
    $("load-more").hidden = !state.nextCursor;
    drawRemovalChart();
  }

  const BUCKETS = [
    { label: "Under 1 hour", max: 3600 },
    { label: "1 to 6 hours", max: 6 * 3600 },
    { label: "6 to 24 hours", max: 86400 },
    { label: "1 to 7 days", max: 7 * 86400 },
    { label: "More than 7 days", max: Infinity },
  ];

  function drawRemovalChart() {
    const counts = BUCKETS.map(() => 0);
    let stillUp = 0;
    for (const f of state.flags) {
      const secs = removedSeconds(f.exposure);
      if (secs === null) {
        stillUp += 1;
        continue;
      }
      counts[BUCKETS.findIndex((b) => secs < b.max)] += 1;
    }
    const bars = BUCKETS.map((b, i) => ({ label: b.label, count: counts[i], kind: "removed", key: String(i) }));
    bars.push({ label: "Not removed yet", count: stillUp, kind: "up", key: "up" });
    const width = 640, rowH = 30, left = 150, right = 60, top = 10;
    const height = top * 2 + rowH * bars.length;
    const max = Math.max(1, ...bars.map((b) => b.count));
    const total = state.flags.length - stillUp;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Time to removal: ${total} of ${state.flags.length} flagged messages came down. ` +
        bars.map((b) => `${b.label}: ${b.count}`).join(", ") + ".",
    });
    bars.forEach((b, i) => {
      const y = top + i * rowH;
      const w = ((width - left - right) * b.count) / max;
      chart.append(svg("text", { x: left - 8, y: y + rowH / 2 + 5, "text-anchor": "end", class: "label" }, b.label));
      chart.append(svg("rect", {
        x: left, y: y + 4, width: Math.max(w, b.count ? 2 : 0), height: rowH - 8,
        class: b.kind === "up" ? "bar bar-up" : "bar",
        "data-testid": "ttr-bar", "data-bucket": b.key, "data-count": b.count,
      }));
      chart.append(svg("text", { x: left + w + 6, y: y + rowH / 2 + 5, class: "value" }, b.count));
    });
    $("removal-chart").replaceChildren(chart);
  }

  function startPolling() {
    stopPolling();
    state.pollTimer = setInterval(() => {
      if (document.visibilityState !== "hidden") loadList(false);
    }, POLL_MS);
  }

  function stopPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  // --- One flag ---------------------------------------------------------------------------

  async function loadFlag(id) {
    const request = ++state.flagRequest;
    const view = $("flag-view");
    delete view.dataset.loadedFlag;
    $("flag-detail").hidden = true;
    $("flag-not-found").hidden = true;
    $("export-status").textContent = "";
    try {
      const history = await apiJson(`api/v1/flags/${encodeURIComponent(id)}`);
      let message = null;
      try {
        message = await apiJson(`api/v1/messages/${encodeURIComponent(history.flag.message_id)}`);
      } catch (err) {
        if (err instanceof SignedOut) throw err;
      }
      if (request !== state.flagRequest) return;
      drawFlag(history, message);
      $("flag-detail").hidden = false;
      view.dataset.loadedFlag = id;
      $("flag-title").focus();
    } catch (err) {
      if (request !== state.flagRequest) return;
      if (err instanceof SignedOut) {
        handleError(err, $("flag-not-found"));
        return;
      }
      $("flag-not-found").hidden = false;
      $("flag-not-found").textContent = err.status === 404
        ? "This flag does not exist, or your role does not allow you to see it."
        : "This flag could not be loaded just now. Try again in a moment.";
      view.dataset.loadedFlag = id;
      view.dataset.notFound = "true";
    }
  }

  function drawFlag(history, message) {
    const f = history.flag;
    delete $("flag-view").dataset.notFound;
    const cat = CATEGORIES[f.category] || { name: f.category, text: "" };
    // A liaison officer may be shown the last raised state of a flag lowered since.
    const standing = !f.raised ? "not raised" : history.current ? "raised" : "was raised, since lowered";
    $("flag-title").textContent = `${cat.name}: ${standing}`;
    $("flag-title").setAttribute("tabindex", "-1");
    const forCount = f.factors.filter((x) => x.effect === "for").length;
    const againstCount = f.factors.filter((x) => x.effect === "against").length;
    const neutralCount = f.factors.filter((x) => x.effect === "neutral").length;
    const where = f.subject === "author" ? "A message" : "A reshare of a message";
    $("flag-summary").textContent =
      `${where} was flagged under category ${cat.number || "?"} of the guidelines (${cat.name.toLowerCase()}). ` +
      `${!f.raised ? "The flag is not raised." : history.current ? "The flag is raised." : "The flag was raised and has since been lowered."} ` +
      `${plural(forCount, "factor")} count towards prosecution and ${plural(againstCount, "factor")} against` +
      (neutralCount ? `; ${plural(neutralCount, "factor")} weighed nothing. ` : ". ") +
      (f.exposure.removed_at
        ? `It came down ${fmtDuration(removedSeconds(f.exposure))} after it was posted.`
        : "It was still up when last seen.");
    $("flag-not-current").hidden = history.current;
    $("flag-account").textContent = f.account;
    $("flag-subject").textContent = subjectText(f);
    $("flag-message").textContent = f.message_id;
    $("flag-score").textContent = `${f.score.toFixed(2)} out of 1 (the higher, the more the factors point towards prosecution)`;
    $("flag-id").textContent = f.flag_id;
    $("flag-at").textContent = fmtTime(f.at);
    $("flag-category-text").textContent = cat.text;
    $("flag-provision").textContent = f.provision;

    const factorItem = (x) => {
      const li = el("li", null, { "data-testid": `factor-${x.effect}`, "data-code": x.code });
      li.append(el("strong", FACTORS[x.code] || x.code));
      li.append(el("p", x.evidence, { class: "evidence" }));
      li.append(el("p", `Provision: ${x.provision}`, { class: "provision" }));
      return li;
    };
    const none = (text) => el("li", text, { class: "none" });
    const pro = f.factors.filter((x) => x.effect === "for").map(factorItem);
    const con = f.factors.filter((x) => x.effect === "against").map(factorItem);
    const nil = f.factors.filter((x) => x.effect === "neutral").map(factorItem);
    $("factors-for").replaceChildren(...(pro.length ? pro : [none("None.")]));
    $("factors-against").replaceChildren(...(con.length ? con : [none("None.")]));
    $("factors-neutral").replaceChildren(...(nil.length ? nil : [none("None.")]));

    $("flag-exposure").textContent = exposureText(f.exposure);
    drawReach(f.reach);
    drawReachChart(history.revisions, f.exposure);
    drawResharers(message, f);
    drawCohorts(message, f);
    drawRevisions(history);
  }

  // A restriction that leaves the message visible to some: the flag says it is still up.
  const RESTRICTED = {
    followers_only: "shown to the sender's followers only",
    age_gated: "shown to adults only",
    limited: "its distribution was limited",
  };

  function restrictedText(e) {
    const r = e.restricted;
    if (!r) return "";
    const by = REMOVED_BY[r.by] || r.by;
    const what = RESTRICTED[r.scope] || r.scope;
    return ` On ${fmtTime(r.at)} it was restricted ${by} (${what}); it stayed visible to some, so it counts as still up.`;
  }

  function exposureText(e) {
    const posted = `Posted on ${fmtTime(e.posted_at)}.`;
    if (!e.removed_at) {
      return `${posted} Still up when last seen: it had been up for ${fmtDuration(e.seconds_up)}.${restrictedText(e)}`;
    }
    const by = REMOVED_BY[e.removed_by] || e.removed_by;
    const how = REMOVAL[e.removal] || e.removal;
    const back = e.still_up ? " It was later made visible again." : "";
    return `${posted} It came down ${fmtDuration(removedSeconds(e))} later, on ${fmtTime(e.removed_at)}, ${by}: ${how}.${back}${restrictedText(e)}`;
  }

  function drawReach(r) {
    const items = [
      ["Audience", `${fmtCount(r.audience)} accounts could see it (followers of the sender and of everyone who reshared it)`],
      ["Reshares", fmtCount(r.reshares)],
      ["Longest chain of reshares", fmtCount(r.depth)],
      ["Quotes", fmtCount(r.quotes)],
      ["Replies", fmtCount(r.replies)],
      ["Times seen", r.impressions === null ? "not reported by the platform" : fmtCount(r.impressions)],
    ];
    const out = [];
    for (const [k, v] of items) {
      out.push(el("dt", k));
      out.push(el("dd", v, k === "Audience" ? { "data-testid": "reach-audience", "data-value": String(r.audience) } : {}));
    }
    $("flag-reach").replaceChildren(...out);
  }

  function drawReachChart(revisions, exposure) {
    const points = revisions.map((r) => ({ t: Date.parse(r.at), v: r.reach.audience })).sort((a, b) => a.t - b.t);
    const removedAt = exposure.removed_at ? Date.parse(exposure.removed_at) : null;
    const posted = Date.parse(exposure.posted_at);
    const width = 640, height = 260, left = 70, right = 20, top = 20, bottom = 40;
    let t0 = Math.min(posted, ...points.map((p) => p.t));
    let t1 = Math.max(...points.map((p) => p.t), removedAt || -Infinity);
    if (!(t1 > t0)) t1 = t0 + 60000;
    const vmax = Math.max(1, ...points.map((p) => p.v));
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
    const y = (v) => top + (1 - v / vmax) * (height - top - bottom);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Reach over time: from ${fmtCount(points.length ? points[0].v : 0)} to ${fmtCount(vmax)} accounts` +
        (removedAt ? `, removed on ${fmtTime(exposure.removed_at)}.` : "; not removed."),
    });
    chart.append(svg("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), class: "axis" }));
    chart.append(svg("line", { x1: left, y1: top, x2: left, y2: y(0), class: "axis" }));
    chart.append(svg("text", { x: left - 6, y: y(vmax) + 4, "text-anchor": "end", class: "label" }, fmtCount(vmax)));
    chart.append(svg("text", { x: left - 6, y: y(0) + 4, "text-anchor": "end", class: "label" }, "0"));
    chart.append(svg("text", { x: left, y: height - 12, class: "label" }, fmtShortTime(t0)));
    chart.append(svg("text", { x: width - right, y: height - 12, "text-anchor": "end", class: "label" }, fmtShortTime(t1)));
    chart.append(svg("text", { x: (left + width - right) / 2, y: height - 12, "text-anchor": "middle", class: "label" }, "time (UTC)"));
    if (points.length) {
      // Reach only changes at revisions, so the line holds each value until the next one.
      let d = `M ${x(points[0].t)} ${y(points[0].v)}`;
      for (let i = 1; i < points.length; i++) d += ` H ${x(points[i].t)} V ${y(points[i].v)}`;
      chart.append(svg("path", { d, class: "reach-line" }));
      for (const p of points) {
        const c = svg("circle", { cx: x(p.t), cy: y(p.v), r: 4, class: "reach-point", "data-testid": "reach-point", "data-value": p.v });
        c.append(svg("title", {}, `${fmtTime(new Date(p.t).toISOString())}: ${fmtCount(p.v)} accounts`));
        chart.append(c);
      }
    }
    if (removedAt !== null) {
      const rx = x(removedAt);
      chart.append(svg("line", { x1: rx, y1: top, x2: rx, y2: y(0), class: "removal", "data-testid": "removal-marker" }));
      chart.append(svg("text", { x: rx - 4, y: top + 12, "text-anchor": "end", class: "removal-label" }, "Came down"));
    }
    $("reach-chart").replaceChildren(chart);
  }

  function drawResharers(message, f) {
    const flags = message ? message.flags.map((s) => s.flag).filter((x) => x.subject === "resharer") : [];
    const rows = flags.map((r) => {
      const tr = el("tr", null, { "data-testid": "resharer-row", "data-flag-id": r.flag_id, "data-raised": String(r.raised) });
      const account = el("td");
      account.append(el("a", r.account, { href: `#/flag/${r.flag_id}`, class: "account" }));
      tr.append(account);
      tr.append(el("td", categoryName(r.category)));
      tr.append(el("td", `${fmtCount(r.reach.audience)} accounts`));
      tr.append(el("td", r.raised ? "Raised" : "Not raised"));
      tr.append(el("td", r.exposure.removed_at
        ? `${fmtDuration(removedSeconds(r.exposure))} after posting, ${REMOVED_BY[r.exposure.removed_by] || ""}`
        : "Still up"));
      if (r.flag_id === f.flag_id) tr.classList.add("this");
      return tr;
    });
    $("resharer-rows").replaceChildren(...rows);
    $("resharers").hidden = rows.length === 0;
    $("resharers-none").hidden = rows.length > 0;
  }

  // --- Everyone who reshared it (the message's resharer cohorts) --------------------------

  const COHORT_PAGE = 50;

  function cohortSummaryText(s) {
    const spread = s.seconds_up;
    const raised = s.raised === 0
      ? "None of their flags is raised."
      : `${fmtCount(s.raised)} of their flags ${s.raised === 1 ? "is" : "are"} raised; each has a flag of its own.`;
    const up = s.still_up === 0
      ? "Every reshare has come down."
      : `${fmtCount(s.still_up)} ${s.still_up === 1 ? "reshare is" : "reshares are"} still up.`;
    const people = `${fmtCount(s.resharers)} ${s.resharers === 1 ? "person" : "people"}`;
    return `${people} reshared it, reaching ${fmtCount(s.audience)} accounts of their own. ` +
      `${raised} ${up} Their reshares were up for ${fmtDuration(spread.median)} in the middle case (the median); ` +
      `nine in ten for ${fmtDuration(spread.p90)} or less; the longest for ${fmtDuration(spread.max)}.`;
  }

  function memberUpText(e) {
    if (!e.removed_at) return `Still up, for ${fmtDuration(e.seconds_up)}`;
    const by = REMOVED_BY[e.removed_by] || e.removed_by || "";
    const back = e.still_up ? " (visible again since)" : "";
    return `Came down after ${fmtDuration(removedSeconds(e))}, ${by}, on ${fmtTime(e.removed_at)}${back}`;
  }

  function memberRow(m) {
    const tr = el("tr", null, {
      "data-testid": "cohort-row", "data-flag-id": m.flag_id, "data-account": m.account, "data-raised": String(m.raised),
    });
    const account = el("td");
    // A resharer's own flag exists once written; for a raised one it always is.
    account.append(el("a", m.account, { href: `#/flag/${m.flag_id}`, class: "account" }));
    tr.append(account);
    tr.append(el("td", m.score.toFixed(2), { class: "number" }));
    tr.append(el("td", m.raised ? "Raised" : "Not raised"));
    tr.append(el("td", fmtCount(m.reach.audience), { class: "number" }));
    tr.append(el("td", fmtCount(m.reach.reshares), { class: "number" }));
    tr.append(el("td", fmtCount(m.reach.depth), { class: "number" }));
    tr.append(el("td", memberUpText(m.exposure)));
    return tr;
  }

  function drawCohorts(message, f) {
    const cohorts = message && message.cohorts ? message.cohorts : [];
    const request = state.flagRequest;
    const blocks = cohorts.map((c) => {
      const block = el("section", null, { class: "cohort", "data-testid": "cohort", "data-category": c.category });
      block.append(el("h3", categoryName(c.category)));
      block.append(el("p", cohortSummaryText(c.summary), {
        class: "summary", "data-testid": "cohort-summary", "data-resharers": String(c.summary.resharers),
      }));
      if (!c.complete) {
        block.append(el("p", "This list is being updated: some resharers may be missing or shown as they were before.", { class: "note" }));
      }
      if (state.session && state.session.raised_only) {
        block.append(el("p", "Your role sees only the resharers whose flags are raised; the numbers above count everyone.", { class: "note" }));
      }
      const table = el("table");
      const head = el("tr");
      for (const h of ["Account", "Risk score", "Raised?", "Audience", "Reshares", "Chain depth", "Up for, or came down"]) {
        head.append(el("th", h, { scope: "col" }));
      }
      table.append(el("thead"));
      table.firstChild.append(head);
      const body = el("tbody", null, { "data-testid": "cohort-rows" });
      table.append(body);
      const wrap = el("div", null, { class: "table-wrap" });
      wrap.append(table);
      block.append(wrap);
      const status = el("p", "", { class: "status", "aria-live": "polite", "data-testid": "cohort-status" });
      block.append(status);
      const more = el("button", "Show more resharers", { type: "button", class: "more", "data-testid": "cohort-more" });
      more.hidden = true;
      block.append(more);
      let cursor = null;
      const load = async () => {
        more.disabled = true;
        status.textContent = "Loading…";
        try {
          let path = `api/v1/messages/${encodeURIComponent(f.message_id)}/resharers?category=${c.category}&limit=${COHORT_PAGE}`;
          if (cursor) path += `&cursor=${encodeURIComponent(cursor)}`;
          const page = await apiJson(path);
          if (request !== state.flagRequest) return;
          const mine = page.cohorts.find((x) => x.category === c.category);
          for (const m of mine ? mine.members : []) body.append(memberRow(m));
          cursor = page.next_cursor;
          more.hidden = !cursor;
          const shown = body.children.length;
          status.textContent = shown === 0 ? "No resharers to list for your role." : `Showing ${plural(shown, "resharer")}.`;
          block.dataset.loads = String(Number(block.dataset.loads || 0) + 1);
        } catch (err) {
          if (err instanceof SignedOut) return handleError(err, status);
          status.textContent = "The list of resharers could not be loaded just now. Try again in a moment.";
        } finally {
          more.disabled = false;
        }
      };
      more.addEventListener("click", load);
      load();
      return block;
    });
    $("cohorts").replaceChildren(...blocks);
    $("cohorts-none").hidden = blocks.length > 0;
  }

  function drawRevisions(history) {
    const rows = history.revisions.slice().reverse().map((r) => {
      const tr = el("tr", null, { "data-testid": "revision-row" });
      tr.append(el("td", fmtTime(r.at)));
      tr.append(el("td", r.raised ? "Raised" : "Not raised"));
      tr.append(el("td", r.score.toFixed(2)));
      tr.append(el("td", `${fmtCount(r.reach.audience)} accounts`));
      tr.append(el("td", r.exposure.removed_at ? "No" : "Yes"));
      return tr;
    });
    $("revision-rows").replaceChildren(...rows);
    const thinned = $("revisions-thinned");
    thinned.hidden = !history.revisions_thinned;
    thinned.textContent = `${plural(history.revisions_thinned, "earlier change")} of this flag are not listed: the server keeps a limited number, always including the first, the newest and every change of whether it was raised or removed.`;
  }

  async function download(kind) {
    const id = $("flag-view").dataset.loadedFlag;
    const status = $("export-status");
    if (!id) return;
    status.textContent = "Preparing the download…";
    try {
      const response = await api(`api/v1/flags/${encodeURIComponent(id)}/export.${kind}`);
      if (!response.ok) throw new Error(String(response.status));
      const blob = await response.blob();
      const name = `modsignal-flag-${id}.${kind}`;
      const url = URL.createObjectURL(blob);
      const a = el("a", null, { href: url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      status.textContent = `Downloaded ${name} (${blob.size} bytes).`;
      status.dataset.file = name;
      status.dataset.bytes = String(blob.size);
    } catch (err) {
      if (err instanceof SignedOut) return handleError(err, status);
      status.textContent = "The download failed. Try again in a moment.";
    }
  }

  // --- Pages ------------------------------------------------------------------------------

  function route() {
    const m = location.hash.match(/^#\/flag\/([0-9a-f]+)$/);
    return m ? { page: "flag", id: m[1] } : { page: "list" };
  }

  function render() {
    showSession();
    const signedIn = Boolean(state.session);
    $("signin").hidden = signedIn;
    const r = route();
    $("list-view").hidden = !signedIn || r.page !== "list";
    $("flag-view").hidden = !signedIn || r.page !== "flag";
    if (!signedIn) {
      stopPolling();
      $("token-input").focus();
      return;
    }
    if (r.page === "list") {
      loadList(false);
      startPolling();
    } else {
      stopPolling();
      loadFlag(r.id);
    }
  }

  async function start() {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut(""));
    $("filter-category").addEventListener("change", () => loadList(false));
    $("filter-track").addEventListener("change", () => loadList(false));
    $("load-more").addEventListener("click", () => loadList(true));
    $("export-json").addEventListener("click", () => download("json"));
    $("export-csv").addEventListener("click", () => download("csv"));
    window.addEventListener("hashchange", render);
    if (sessionStorage.getItem(TOKEN_KEY)) {
      try {
        state.session = await apiJson("api/v1/session");
      } catch (err) {
        sessionStorage.removeItem(TOKEN_KEY);
      }
    }
    render();
    document.body.dataset.ready = "true";
  }

  start();
})();
