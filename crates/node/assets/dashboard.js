// Tally's live dashboard: polls the serving validator's JSON API about once a second and draws
// what it answers. Plain JavaScript, no dependencies, nothing loaded from anywhere else.
//
// Every u128 and u64 arrives as a decimal string. Amounts, balances and ids stay strings or
// BigInt here; only small counts (events in a block) and times in milliseconds become Numbers.
"use strict";

(function () {
  const POLL_INTERVAL_MS = 1000;
  const POLL_INTERVAL_HIDDEN_MS = 5000;
  const PROBE_INTERVAL_MS = 2000;
  const REQUEST_TIMEOUT_MS = 4000;
  const PROBE_TIMEOUT_MS = 2500;
  // The chart spans the data it has, in whole minutes, from one minute up to five.
  const CHART_WINDOW_MS = 5 * 60 * 1000;
  const CHART_WINDOW_MIN_MS = 60 * 1000;
  const THROUGHPUT_RECENT_MS = 10 * 1000;
  // Each plotted throughput point averages the samples of this window, since one block more or
  // less in a poll interval would otherwise make the line jump.
  const THROUGHPUT_SMOOTHING_MS = 5 * 1000;
  // With the height unchanged for this long (by this page's clock), the page says the chain is
  // stalled: validators propose a block every view, even an empty one.
  const CHAIN_STALL_ALERT_MS = 15000;
  const BLOCKS_LIMIT = 100; // the API's largest page, asked for first and whenever blocks are fast
  const BLOCKS_SHOWN = 12;
  const TRANSFERS_LIMIT = 20;
  const ACCOUNT_TRANSFERS_LIMIT = 20;
  // A validator is lagging when it has not voted for this long, and down when it has not voted
  // for the longer time and cannot be reached directly either.
  const LAGGING_SILENCE_MS = 5000;
  const DOWN_SILENCE_MS = 30000;
  // A validator is lagging when it missed more than this share of the finalizations of the last
  // MISSED_WINDOW_MS (a healthy validator's vote is sometimes not among the quorum that counted).
  const MISSED_WINDOW_MS = 10000;
  const MISSED_SHARE_MAX = 0.5;
  // A validator whose own height trails ours by more than this many seconds' worth of blocks,
  // and by more than a few blocks (an idle chain makes one block per 10 s heartbeat).
  const HEIGHT_LAG_SECONDS = 3;
  const HEIGHT_LAG_BLOCKS_MIN = 3;
  const U128_MAX = (1n << 128n) - 1n;
  const DECIMAL = /^(0|[1-9][0-9]*)$/;

  // ---------------------------------------------------------------------------------------
  // Values from the API

  /** A u64/u128 field as a decimal string (the API sends strings; small counts may be numbers). */
  function decimal(value) {
    if (typeof value === "string" && DECIMAL.test(value)) return value;
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return String(value);
    if (typeof value === "bigint" && value >= 0n) return value.toString();
    return null;
  }

  /** A field as BigInt, or null. */
  function big(value) {
    const text = decimal(value);
    return text === null ? null : BigInt(text);
  }

  /** A small count (events in a block, requests in the mempool) as a Number, or null. */
  function count(value) {
    const text = decimal(value);
    if (text === null) return null;
    const number = Number(text);
    return Number.isSafeInteger(number) ? number : null;
  }

  /** A nanosecond timestamp (u64 decimal string) as milliseconds since the epoch, or null. */
  function nsToMs(value) {
    const ns = big(value);
    if (ns === null || ns === 0n) return null;
    return Number(ns / 1000000n);
  }

  /** A decimal string with thousands separators, digit by digit (no precision is lost). */
  function grouped(value) {
    const text = decimal(value);
    if (text === null) return "—";
    return text.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /** A signed BigInt with separators. */
  function groupedSigned(value) {
    return value < 0n ? "−" + grouped((-value).toString()) : grouped(value.toString());
  }

  function shortHex(hex, head, tail) {
    if (typeof hex !== "string" || hex.length === 0) return "—";
    const front = head || 8;
    const back = tail === undefined ? 4 : tail;
    if (hex.length <= front + back + 1) return hex;
    return hex.slice(0, front) + "…" + (back > 0 ? hex.slice(-back) : "");
  }

  function compact(value) {
    if (value === null || !Number.isFinite(value)) return "—";
    const magnitude = Math.abs(value);
    if (magnitude >= 1e9) return (value / 1e9).toFixed(magnitude >= 1e10 ? 0 : 1) + "G";
    if (magnitude >= 1e6) return (value / 1e6).toFixed(magnitude >= 1e7 ? 0 : 1) + "M";
    if (magnitude >= 1e3) return (value / 1e3).toFixed(magnitude >= 1e4 ? 0 : 1) + "k";
    if (magnitude >= 10 || value === 0) return value.toFixed(0);
    return value.toFixed(1);
  }

  function duration(ms) {
    if (ms === null || !Number.isFinite(ms)) return "—";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
    if (ms < 3600000) return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
    return (ms / 3600000).toFixed(1) + " h";
  }

  /** An axis label for a duration: "250 ms", "1.5 s", "2 s". */
  function axisDuration(ms) {
    if (ms < 1000) return Math.round(ms) + " ms";
    return Number((ms / 1000).toFixed(2)) + " s";
  }

  /** A time-axis label, `ms` before now: "now", "−45 s", "−1:30", "−2 min". */
  function timeAgoLabel(ms) {
    const seconds = Math.round(ms / 1000);
    if (seconds === 0) return "now";
    if (seconds < 60) return "−" + seconds + " s";
    if (seconds % 60 === 0) return "−" + seconds / 60 + " min";
    return "−" + Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }

  /** A long wait in whole seconds, then minutes: "27 s", "3 min 5 s". */
  function waited(ms) {
    return ms < 60000 ? Math.round(ms / 1000) + " s" : duration(ms);
  }

  function ago(ms) {
    if (ms === null || !Number.isFinite(ms)) return "never";
    if (ms < 1000) return "just now";
    if (ms < 60000) return Math.round(ms / 1000) + " s ago";
    if (ms < 3600000) return Math.round(ms / 60000) + " min ago";
    return Math.round(ms / 3600000) + " h ago";
  }

  function clockTime(ms, withMillis) {
    if (ms === null) return "—";
    const date = new Date(ms);
    const pad = (n, width) => String(n).padStart(width || 2, "0");
    const text = pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
    return withMillis ? text + "." + pad(date.getMilliseconds(), 3) : text;
  }

  // ---------------------------------------------------------------------------------------
  // HTTP

  class ApiFailure extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function fetchWithTimeout(url, options, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await fetch(url, Object.assign({ cache: "no-store", signal: controller.signal }, options));
    } finally {
      clearTimeout(timer);
    }
  }

  /** GET or POST the API; answers the parsed JSON or throws an ApiFailure with the API's code. */
  async function api(path, body) {
    const options = body === undefined
      ? { method: "GET", headers: { Accept: "application/json" } }
      : { method: "POST", headers: { Accept: "application/json", "Content-Type": "application/json" }, body: JSON.stringify(body) };
    let response;
    try {
      response = await fetchWithTimeout(path, options, REQUEST_TIMEOUT_MS);
    } catch (error) {
      const timedOut = error && error.name === "AbortError";
      throw new ApiFailure(0, timedOut ? "timeout" : "unreachable", timedOut ? "no answer within " + REQUEST_TIMEOUT_MS / 1000 + " s" : "the validator cannot be reached");
    }
    let json = null;
    try {
      json = await response.json();
    } catch (error) {
      json = null;
    }
    if (!response.ok) {
      const detail = json && json.error ? json.error : {};
      throw new ApiFailure(response.status, detail.code || "http_" + response.status, detail.message || "HTTP " + response.status);
    }
    if (json === null || typeof json !== "object") throw new ApiFailure(response.status, "malformed_answer", "the answer is not JSON");
    return json;
  }

  // ---------------------------------------------------------------------------------------
  // DOM helpers

  const $ = (id) => document.getElementById(id);

  function element(tag, attributes, children) {
    const node = document.createElement(tag);
    if (attributes) {
      for (const [name, value] of Object.entries(attributes)) {
        if (value === null || value === undefined || value === false) continue;
        if (name === "text") node.textContent = value;
        else if (name === "className") node.className = value;
        else node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children || []) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(id, text, title) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
    if (title !== undefined) {
      if (title) node.setAttribute("title", title);
      else node.removeAttribute("title");
    }
    return node;
  }

  /**
   * Fills `node` with a number and its separators, with a line-break opportunity after each
   * separator (a <wbr>, so textContent stays the plain number) for narrow screens.
   */
  function fillGrouped(node, text) {
    if (node.textContent === text) return node;
    const parts = [];
    text.split(",").forEach((group, index, groups) => {
      parts.push(document.createTextNode(index < groups.length - 1 ? group + "," : group));
      if (index < groups.length - 1) parts.push(document.createElement("wbr"));
    });
    node.replaceChildren(...parts);
    return node;
  }

  /** Sets a number shown with separators, keeping the exact decimal in data-value. */
  function setDecimal(id, value) {
    const node = fillGrouped($(id), grouped(value));
    const text = decimal(value);
    if (text === null) node.removeAttribute("data-value");
    else node.setAttribute("data-value", text);
    return node;
  }

  /** An amount: separators, optional sign, exact decimal in data-value. */
  function amountElement(value, sign, className) {
    const node = element("span", { className: "mono amount" + (className ? " " + className : ""), "data-value": decimal(value) });
    return fillGrouped(node, (sign || "") + grouped(value));
  }

  /** A button that looks up an account id. */
  function accountButton(id) {
    const text = decimal(id);
    if (text === null) return element("span", { text: "—" });
    return element("button", { type: "button", className: "link mono", "data-account": text, title: "Look up account " + text, text: shortDecimal(text) });
  }

  /** Very long ids (up to 39 digits) are shortened on screen; the full id stays in the title. */
  function shortDecimal(text) {
    return text.length > 14 ? text.slice(0, 6) + "…" + text.slice(-5) : text;
  }

  /**
   * Replaces the rows of a tbody, keyed by `key(item)`, only when the keys or their content
   * changed; rows whose key is new get the "fresh" class for a moment.
   */
  function renderRows(tbody, items, key, build, signature, highlight) {
    const previous = new Set(Array.from(tbody.rows, (row) => row.dataset.key));
    const wanted = items.map((item) => key(item) + "|" + signature(item)).join("\n");
    if (tbody.dataset.signature === wanted) return;
    tbody.dataset.signature = wanted;
    const firstRender = tbody.rows.length === 0 && tbody.dataset.rendered !== "yes";
    const fragment = document.createDocumentFragment();
    for (const item of items) {
      const row = build(item);
      row.dataset.key = key(item);
      if (highlight !== false && !firstRender && !previous.has(row.dataset.key)) row.classList.add("fresh");
      fragment.append(row);
    }
    tbody.replaceChildren(fragment);
    tbody.dataset.rendered = "yes";
  }

  // ---------------------------------------------------------------------------------------
  // State

  const state = {
    status: null,
    statusAtMs: null,
    failures: 0,
    lastSuccessMs: null,
    lastError: null,
    halted: false,
    // The newest block seen: { height: BigInt, timestampMs }
    newestBlock: null,
    heightHistory: [], // { atMs, height: BigInt }
    heightChangedAtMs: null, // when this page last saw the height change (or first saw it)
    eventsSample: null, // { atMs, events }: the validator's events_finalized at the last poll
    throughput: [], // { atMs, events, spanMs }: events finalized over spanMs
    latency: [], // { atMs, latencyMs }
    validatorHistory: new Map(), // key -> [{ atMs, missed: BigInt, height: BigInt }]
    probes: new Map(), // key -> { kind, detail, height, atMs }
    corsBlocked: new Set(), // validator keys whose API refuses cross-origin reads
    // The evidence of misbehaviour this validator keeps (GET /v1/evidence), fetched again when the
    // status's count of evidence changes: [{ kind, view, validator, proof }]
    evidence: [],
    evidenceCount: null,
    account: null, // { id, data, transfers, error }
    accountGeneration: 0,
  };

  // ---------------------------------------------------------------------------------------
  // Status

  function recordStatus(status, atMs) {
    state.status = status;
    state.statusAtMs = atMs;
    const height = big(status.height);
    if (height !== null) {
      const last = state.heightHistory[state.heightHistory.length - 1];
      if (!last || last.height !== height) state.heightChangedAtMs = atMs;
      state.heightHistory.push({ atMs, height });
      while (state.heightHistory.length > 0 && state.heightHistory[0].atMs < atMs - 60000) state.heightHistory.shift();
    }
    // Throughput: the events the validator finalized since the last poll, over the time between
    // the polls. The validator counts every finalized block, so none is missed however many
    // blocks a poll brings.
    const events = typeof status.events_finalized === "number" ? status.events_finalized : null;
    if (events !== null) {
      const previous = state.eventsSample;
      if (previous !== null && events >= previous.events && atMs > previous.atMs) {
        state.throughput.push({ atMs, events: events - previous.events, spanMs: atMs - previous.atMs });
      }
      state.eventsSample = { atMs, events };
    }
    const validators = Array.isArray(status.validators) ? status.validators : [];
    for (const validator of validators) {
      const missed = big(validator.missed_finalizations);
      if (typeof validator.key !== "string" || missed === null || height === null) continue;
      const history = state.validatorHistory.get(validator.key) || [];
      history.push({ atMs, missed, height });
      while (history.length > 0 && history[0].atMs < atMs - MISSED_WINDOW_MS) history.shift();
      state.validatorHistory.set(validator.key, history);
    }
  }

  /** Blocks finalized per second over the last ten seconds of polls. */
  function blockRate() {
    const history = state.heightHistory;
    if (history.length < 2) return null;
    const last = history[history.length - 1];
    let first = history[0];
    for (const entry of history) {
      if (entry.atMs >= last.atMs - 10000) {
        first = entry;
        break;
      }
    }
    const seconds = (last.atMs - first.atMs) / 1000;
    if (seconds <= 0) return null;
    return Number(last.height - first.height) / seconds;
  }

  function validatorLabel(key) {
    const validators = (state.status && state.status.validators) || [];
    const index = validators.findIndex((validator) => validator.key === key);
    return index < 0 ? null : "validator " + index;
  }

  function renderStatus() {
    const status = state.status;
    if (!status) return;
    setText("chain-id", decimal(status.chain_id) !== null ? grouped(status.chain_id) : String(status.chain_id ?? "—"));
    const self = typeof status.validator === "string" ? status.validator : "";
    const selfLabel = validatorLabel(self);
    setText("serving-validator", (selfLabel ? selfLabel + " · " : "") + shortHex(self), self);
    setDecimal("height", status.height);
    const rate = blockRate();
    setText("height-rate", rate === null ? "finalized" : compact(rate) + " blocks/s");
    setDecimal("view", status.view);
    const leader = typeof status.leader === "string" ? status.leader : "";
    const leaderLabel = validatorLabel(leader);
    setText("leader", leaderLabel || shortHex(leader, 8, 0), leader);
    $("leader").setAttribute("data-key", leader);
    setText("leader-key", shortHex(leader, 12, 0), leader);
    setDecimal("mempool", status.mempool_requests);
    setDecimal("requests-finalized", status.requests_finalized);
    setDecimal("faults-tolerated", status.faults_tolerated);
    const validators = Array.isArray(status.validators) ? status.validators.length : 0;
    const none = big(status.faults_tolerated) === 0n;
    setText(
      "tolerance-note",
      none ? `of ${validators}: one stop stops the chain` : `faulty of ${validators} · quorum ${decimal(status.quorum) ?? "—"}`,
    );
    $("tolerance-card").classList.toggle("warn", none);
    setDecimal("blocks-refused", status.blocks_refused);
    setDecimal("evidence", status.evidence);
    $("refused-card").classList.toggle("warn", (big(status.blocks_refused) || 0n) > 0n || (big(status.evidence) || 0n) > 0n);
    setText("state-digest", typeof status.state_digest === "string" ? status.state_digest : "—");
    setText("finalized-block", shortHex(status.finalized_block, 16, 8), status.finalized_block || "");
  }

  // ---------------------------------------------------------------------------------------
  // Blocks, throughput and finality latency

  function parseBlock(block) {
    const height = big(block.height);
    if (height === null) return null;
    return {
      height,
      heightText: height.toString(),
      view: decimal(block.view),
      digest: typeof block.digest === "string" ? block.digest : "",
      stateDigest: typeof block.state_digest === "string" ? block.state_digest : "",
      timestampMs: nsToMs(block.timestamp),
      requests: count(block.requests),
      events: count(block.events),
    };
  }

  /** Adds samples for the blocks newest-first in `blocks`, fetched between sentMs and receivedMs. */
  function recordBlocks(blocks, sentMs, receivedMs) {
    if (blocks.length === 0) return;
    const newest = blocks[0];
    const previous = state.newestBlock;
    const pollMs = (sentMs + receivedMs) / 2;
    // Finality latency: the age of the newest finalized block when this validator answered.
    // Blocks follow each other without pause, so that is the time from proposal to finality
    // plus at most one block interval. Clocks of the browser and the proposer are compared.
    if (newest.timestampMs !== null) {
      state.latency.push({ atMs: receivedMs, latencyMs: Math.max(0, pollMs - newest.timestampMs) });
    }
    // Before the first poll, the chart starts from the blocks of the first page.
    if (previous === null) backfillThroughput(blocks);
    if (previous === null || newest.height >= previous.height) state.newestBlock = newest;
    const horizon = receivedMs - CHART_WINDOW_MS;
    while (state.throughput.length > 0 && state.throughput[0].atMs < horizon) state.throughput.shift();
    while (state.latency.length > 0 && state.latency[0].atMs < horizon) state.latency.shift();
  }

  /** On the first page of blocks, one throughput sample per second of block time it covers. */
  function backfillThroughput(blocks) {
    const ascending = blocks.filter((block) => block.timestampMs !== null).slice().reverse();
    if (ascending.length < 2) return;
    let start = ascending[0];
    let events = 0;
    for (let index = 1; index < ascending.length; index += 1) {
      const block = ascending[index];
      events += block.events || 0;
      const spanMs = block.timestampMs - start.timestampMs;
      if (spanMs >= 1000 || index === ascending.length - 1) {
        if (spanMs > 0) state.throughput.push({ atMs: block.timestampMs, events, spanMs });
        start = block;
        events = 0;
      }
    }
  }

  /**
   * How many blocks to ask for: a full page at first (to backfill the chart), then twice what a
   * poll interval finalizes, so that no block goes unseen between polls, and never fewer than the
   * table shows.
   */
  function blocksLimit() {
    const rate = blockRate();
    if (state.newestBlock === null || rate === null) return BLOCKS_LIMIT;
    const expected = Math.ceil((rate * 2 * POLL_INTERVAL_MS) / 1000) + 2;
    return Math.min(BLOCKS_LIMIT, Math.max(BLOCKS_SHOWN, expected));
  }

  function renderBlocks(blocks) {
    const shown = blocks.slice(0, BLOCKS_SHOWN);
    renderRows(
      $("recent-blocks").tBodies[0],
      shown,
      (block) => block.heightText,
      (block) => {
        const row = element("tr", { "data-height": block.heightText }, [
          element("td", { className: "num mono", text: grouped(block.heightText) }),
          element("td", { className: "num mono optional", text: grouped(block.view) }),
          element("td", { className: "mono", title: block.digest, text: shortHex(block.digest) }),
          element("td", { className: "num optional", text: block.requests === null ? "—" : grouped(block.requests) }),
          element("td", { className: "num", text: block.events === null ? "—" : grouped(block.events) }),
          element("td", { className: "mono optional", title: block.stateDigest, text: shortHex(block.stateDigest) }),
          element("td", { className: "num mono", text: clockTime(block.timestampMs, true) }),
        ]);
        if (block.events) row.classList.add("busy");
        return row;
      },
      (block) => block.digest,
      false,
    );
    const withEvents = blocks.filter((block) => block.events).length;
    setText("blocks-aside", blocks.length === 0 ? "" : withEvents + " of the last " + blocks.length + " carry requests");
  }

  // ---------------------------------------------------------------------------------------
  // The chart (SVG drawn here)

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** The smallest "nice" number (1, 2 or 5 times a power of ten) at least `value`: its half is nice too. */
  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  /** Events per second over the samples in (fromMs, toMs]. */
  function rateBetween(samples, fromMs, toMs) {
    let events = 0;
    let spanMs = 0;
    for (const sample of samples) {
      if (sample.atMs <= fromMs || sample.atMs > toMs) continue;
      events += sample.events;
      spanMs += sample.spanMs;
    }
    return spanMs > 0 ? (events * 1000) / spanMs : null;
  }

  function renderChart() {
    const chart = $("chart");
    const width = Math.max(280, Math.round(chart.clientWidth || 600));
    const height = Math.max(180, Math.round(chart.clientHeight || 240));
    const nowMs = Date.now();
    const firstMs = Math.min(nowMs, ...[state.throughput[0], state.latency[0]].filter(Boolean).map((point) => point.atMs));
    const windowMs = Math.min(CHART_WINDOW_MS, Math.max(CHART_WINDOW_MIN_MS, Math.ceil((nowMs - firstMs) / 60000) * 60000));
    const startMs = nowMs - windowMs;
    const margin = { left: 52, right: 14, top: 10, bottom: 24 };
    const gap = 22;
    const plotWidth = width - margin.left - margin.right;
    const paneHeight = (height - margin.top - margin.bottom - gap) / 2;
    const xOf = (atMs) => margin.left + ((atMs - startMs) / windowMs) * plotWidth;
    const minutes = windowMs / 60000;
    setText("chart-title", "Throughput and finality, last " + (minutes === 1 ? "minute" : minutes + " minutes"));

    const throughput = state.throughput
      .filter((sample) => sample.atMs >= startMs && sample.atMs <= nowMs + 1000)
      .map((sample) => ({ atMs: sample.atMs, spanMs: sample.spanMs, eventsPerSecond: rateBetween(state.throughput, sample.atMs - THROUGHPUT_SMOOTHING_MS, sample.atMs) }));
    const latency = state.latency.filter((point) => point.atMs >= startMs && point.atMs <= nowMs + 1000);
    const throughputMax = niceCeiling(Math.max(0, ...throughput.map((point) => point.eventsPerSecond)));
    const latencyMax = niceCeiling(Math.max(0, ...latency.map((point) => point.latencyMs)));

    chart.setAttribute("viewBox", "0 0 " + width + " " + height);
    const nodes = [];
    const panes = [
      // Throughput is drawn in steps: each sample is a rate over the span of time it covers, so
      // a long span (the chain stalled, or its validators were down) stays one flat segment.
      { top: margin.top, max: throughputMax, points: throughput, value: (p) => p.eventsPerSecond, steps: true, label: (v) => compact(v), className: "throughput", title: "events/s" },
      { top: margin.top + paneHeight + gap, max: latencyMax, points: latency, value: (p) => p.latencyMs, steps: false, label: (v) => axisDuration(v), className: "latency", title: "finality" },
    ];
    for (const pane of panes) {
      const yOf = (value) => pane.top + paneHeight - (value / pane.max) * paneHeight;
      for (const fraction of [0, 0.5, 1]) {
        const y = yOf(pane.max * fraction);
        nodes.push(svg("line", { class: "grid-line", x1: margin.left, x2: width - margin.right, y1: y, y2: y }));
        nodes.push(svg("text", { class: "axis-label", x: margin.left - 6, y: y + 4, "text-anchor": "end" }, pane.label(pane.max * fraction)));
      }
      nodes.push(svg("text", { class: "pane-title " + pane.className, x: margin.left + 6, y: pane.top + 12 }, pane.title));
      if (pane.points.length > 0) {
        const coordinates = [];
        let previousEnd = -Infinity;
        for (const point of pane.points) {
          const y = yOf(pane.value(point));
          if (pane.steps) {
            // Clocks of blocks and of this page differ a little: never draw backwards in time.
            const begin = Math.max(previousEnd, startMs, point.atMs - point.spanMs);
            coordinates.push([xOf(begin), y]);
          }
          coordinates.push([xOf(point.atMs), y]);
          previousEnd = point.atMs;
        }
        const line = coordinates.map(([x, y], index) => (index === 0 ? "M" : "L") + x.toFixed(1) + " " + y.toFixed(1)).join(" ");
        const base = yOf(0).toFixed(1);
        const first = coordinates[0];
        const last = coordinates[coordinates.length - 1];
        nodes.push(svg("path", { class: "area " + pane.className, d: line + " L" + last[0].toFixed(1) + " " + base + " L" + first[0].toFixed(1) + " " + base + " Z" }));
        nodes.push(svg("path", { class: "line " + pane.className, d: line }));
        nodes.push(svg("circle", { class: "dot " + pane.className, cx: last[0].toFixed(1), cy: last[1].toFixed(1), r: 3 }));
      } else {
        nodes.push(svg("text", { class: "axis-label", x: margin.left + plotWidth / 2, y: pane.top + paneHeight / 2 + 4, "text-anchor": "middle" }, "waiting for blocks…"));
      }
    }
    // Time ticks: every 15 s over one minute, 30 s over two, a minute beyond; half as many when narrow.
    const tickMs = (windowMs <= 60000 ? 15000 : windowMs <= 120000 ? 30000 : 60000) * (plotWidth < 360 ? 2 : 1);
    for (let beforeMs = 0; beforeMs <= windowMs; beforeMs += tickMs) {
      const x = xOf(nowMs - beforeMs);
      const anchor = beforeMs === windowMs ? "start" : beforeMs === 0 ? "end" : "middle";
      nodes.push(svg("text", { class: "axis-label", x, y: height - 6, "text-anchor": anchor }, timeAgoLabel(beforeMs)));
    }
    chart.replaceChildren(...nodes);
    chart.setAttribute("data-points", String(throughput.length));
    chart.setAttribute("data-latency-points", String(latency.length));

    const current = rateBetween(state.throughput, nowMs - THROUGHPUT_RECENT_MS, nowMs + 1000);
    const peak = throughput.length > 0 ? Math.max(...throughput.map((point) => point.eventsPerSecond)) : null;
    const recentLatency = latency.slice(-10).map((point) => point.latencyMs).sort((a, b) => a - b);
    const median = recentLatency.length > 0 ? recentLatency[Math.floor(recentLatency.length / 2)] : null;
    setText("throughput-now", compact(current));
    setText("throughput-peak", compact(peak));
    setText("latency-now", median === null ? "—" : duration(median));
  }

  // ---------------------------------------------------------------------------------------
  // Validators

  /** The base URL of a validator's API from its `api` address, or null when it cannot be used. */
  function apiBase(address) {
    if (typeof address !== "string" || address.length === 0) return null;
    let url;
    try {
      url = new URL(/^https?:\/\//.test(address) ? address : "http://" + address);
    } catch (error) {
      return null;
    }
    // An API bound to every interface is reached at the host this page came from.
    if (url.hostname === "0.0.0.0" || url.hostname === "[::]") url.hostname = location.hostname;
    // A page served over https may not read http (mixed content).
    if (location.protocol === "https:" && url.protocol === "http:") return null;
    return url.origin;
  }

  async function probe(validator) {
    if (validator.self) {
      try {
        const response = await fetchWithTimeout("/healthz", {}, PROBE_TIMEOUT_MS);
        return response.ok ? { kind: "ok", detail: "healthy" } : { kind: response.status === 503 ? "halted" : "error", detail: "HTTP " + response.status };
      } catch (error) {
        return { kind: "unreachable", detail: "no answer" };
      }
    }
    const base = apiBase(validator.api);
    if (base === null) return { kind: "unknown", detail: "no API address this page can reach" };
    if (!state.corsBlocked.has(validator.key)) {
      try {
        const response = await fetchWithTimeout(base + "/healthz", { mode: "cors" }, PROBE_TIMEOUT_MS);
        if (response.status === 503) return { kind: "halted", detail: "halted" };
        if (!response.ok) return { kind: "error", detail: "HTTP " + response.status };
        let height = null;
        try {
          const status = await (await fetchWithTimeout(base + "/v1/status", { mode: "cors" }, PROBE_TIMEOUT_MS)).json();
          height = big(status.height);
        } catch (error) {
          height = null;
        }
        return { kind: "ok", detail: "healthy", height };
      } catch (error) {
        if (error && error.name === "AbortError") return { kind: "unreachable", detail: "no answer within " + PROBE_TIMEOUT_MS / 1000 + " s" };
      }
    }
    // Either the validator is down or its API does not allow this page to read it: a request
    // whose answer stays hidden still tells which.
    try {
      await fetchWithTimeout(base + "/healthz", { mode: "no-cors" }, PROBE_TIMEOUT_MS);
      state.corsBlocked.add(validator.key);
      return { kind: "reachable", detail: "answers (its health is not readable from this page)" };
    } catch (error) {
      state.corsBlocked.delete(validator.key);
      return { kind: "unreachable", detail: error && error.name === "AbortError" ? "no answer within " + PROBE_TIMEOUT_MS / 1000 + " s" : "connection refused" };
    }
  }

  let probing = false;
  async function probeAll() {
    const validators = state.status && Array.isArray(state.status.validators) ? state.status.validators : [];
    if (probing || validators.length === 0) return;
    probing = true;
    try {
      const results = await Promise.all(validators.map((validator) => probe(validator)));
      const atMs = Date.now();
      // Heights are compared with ours as of the probe, not with a newer one.
      const ourHeight = state.status ? big(state.status.height) : null;
      validators.forEach((validator, index) => state.probes.set(validator.key, Object.assign({ atMs, ourHeight }, results[index])));
      renderValidators();
    } finally {
      probing = false;
    }
  }

  /** How long ago the serving validator last saw this one's vote, in ms, or null if never. */
  function silenceMs(validator) {
    return count(validator.last_seen_ms);
  }

  /**
   * How much longer ago than the most recently heard validator this one last voted, in ms, or
   * null if never. An idle cluster votes once per heartbeat (10 s), so silence alone says little;
   * silence while the others vote says this one fell behind.
   */
  function lagMs(validator) {
    const silence = silenceMs(validator);
    if (silence === null) return null;
    const validators = (state.status && state.status.validators) || [];
    const heard = validators.map(silenceMs).filter((value) => value !== null);
    return silence - Math.min(silence, ...heard);
  }

  /** up | lagging | down | halted, with the reason. */
  function judge(validator) {
    const probeResult = state.probes.get(validator.key);
    const silence = silenceMs(validator);
    if (validator.self) {
      if (state.halted || (probeResult && probeResult.kind === "halted")) return { state: "halted", reason: "halted: it stopped executing" };
      if (state.failures > 0) return { state: "down", reason: "its API stopped answering this page" };
    } else if (probeResult) {
      if (probeResult.kind === "halted") return { state: "halted", reason: "halted: it stopped executing" };
      if (probeResult.kind === "unreachable") return { state: "down", reason: "API " + probeResult.detail };
    }
    // Its API answers this page (its health readable or not): then silence makes it lagging only.
    const answers = probeResult && (probeResult.kind === "ok" || probeResult.kind === "reachable");
    if (!validator.self && (silence === null || silence > DOWN_SILENCE_MS) && !answers) {
      return { state: "down", reason: silence === null ? "never voted" : "no vote for " + waited(silence) };
    }
    const lag = lagMs(validator);
    if (!validator.self && lag !== null && lag > LAGGING_SILENCE_MS) {
      return { state: "lagging", reason: "no vote for " + waited(silence) };
    }
    const history = state.validatorHistory.get(validator.key) || [];
    if (history.length >= 2) {
      const first = history[0];
      const last = history[history.length - 1];
      const finalized = Number(last.height - first.height);
      const missed = Number(last.missed - first.missed);
      if (finalized >= 4 && missed > finalized * MISSED_SHARE_MAX) {
        return { state: "lagging", reason: "missed " + missed + " of the last " + finalized + " finalizations" };
      }
    }
    if (!validator.self && probeResult && typeof probeResult.height === "bigint") {
      const ours = probeResult.ourHeight;
      const rate = blockRate() || 0;
      const allowed = BigInt(Math.max(HEIGHT_LAG_BLOCKS_MIN, Math.ceil(rate * HEIGHT_LAG_SECONDS)));
      if (ours !== null && ours - probeResult.height > allowed) {
        return { state: "lagging", reason: "height " + grouped(probeResult.height.toString()) + ", " + grouped((ours - probeResult.height).toString()) + " behind" };
      }
    }
    if (validator.self) return { state: "up", reason: "serving this page" };
    if (silence === null) return { state: "up", reason: "answers; no vote seen yet" };
    return { state: "up", reason: probeResult && probeResult.kind === "reachable" ? "voting; API answers" : "voting" };
  }

  // ---------------------------------------------------------------------------------------
  // Evidence of misbehaviour

  async function refreshEvidence(count) {
    const text = String(count === undefined || count === null ? "" : count);
    if (text === state.evidenceCount) return;
    try {
      const answer = await api("/v1/evidence");
      state.evidence = Array.isArray(answer.evidence) ? answer.evidence : [];
      state.evidenceCount = text;
    } catch (error) {
      // Kept as it was; asked again at the next poll.
    }
  }

  const EVIDENCE_KINDS = {
    conflicting_notarize: "notarized two blocks",
    conflicting_finalize: "finalized two blocks",
    nullify_finalize: "skipped and finalized",
  };

  /** The evidence cell of a validator: how many pieces name it, each listed with its view. */
  function evidenceCell(key) {
    const pieces = state.evidence.filter((piece) => piece.validator === key);
    if (pieces.length === 0) return element("td", { className: "num mono", "data-label": "Evidence", "data-evidence": "0", text: "0" });
    const items = pieces.map((piece) =>
      element("li", { className: "mono", "data-evidence-kind": String(piece.kind) }, [
        (EVIDENCE_KINDS[piece.kind] || String(piece.kind)) + " in view " + grouped(piece.view),
      ]),
    );
    return element("td", { className: "num warn", "data-label": "Evidence", "data-evidence": String(pieces.length) }, [
      element("details", { className: "evidence" }, [
        element("summary", { className: "mono", title: "signed proof that this validator broke the protocol: check it with `tally evidence verify`", text: String(pieces.length) }),
        element("ul", { className: "evidence-list" }, items),
        element("a", { href: "/v1/evidence", target: "_blank", rel: "noopener", text: "signed proofs (JSON)" }),
      ]),
    ]);
  }

  function renderValidators() {
    const status = state.status;
    const validators = status && Array.isArray(status.validators) ? status.validators : [];
    const judged = validators.map((validator, index) => ({ validator, index, verdict: judge(validator) }));
    const leader = status ? status.leader : null;
    renderRows(
      $("validators").tBodies[0],
      judged,
      ({ validator }) => String(validator.key),
      ({ validator, index, verdict }) => {
        const key = String(validator.key || "");
        const badges = [];
        if (validator.self) badges.push(element("span", { className: "badge", text: "this page" }));
        if (key === leader) badges.push(element("span", { className: "badge badge-leader", text: "leader" }));
        const silence = silenceMs(validator);
        const api = typeof validator.api === "string" ? validator.api : "";
        return element("tr", { "data-validator-key": key, "data-state": verdict.state, "data-self": validator.self ? "true" : null }, [
          element("th", { scope: "row", className: "validator" }, [
            element("span", { className: "validator-name" }, ["validator " + index, ...badges]),
            element("span", { className: "secondary mono", title: key + (api ? " at " + api : "") }, [shortHex(key, 8, 0) + (api ? " · " + api : "")]),
          ]),
          element("td", { className: "verdict" }, [
            element("span", { className: "pill pill-" + verdict.state, text: verdict.state }),
            element("span", { className: "secondary reason", text: verdict.reason }),
          ]),
          element("td", { className: "num", "data-label": "Last vote" }, [
            element("span", { className: "mono", title: "the last view it voted in", text: "view " + grouped(validator.last_vote_view) }),
            element("span", { className: "secondary", text: validator.self ? "this validator" : ago(silence) }),
          ]),
          element("td", { className: "num mono", "data-label": "Missed", text: grouped(validator.missed_finalizations) }),
          element("td", { className: "num mono" + ((big(validator.faults) || 0n) > 0n ? " warn" : ""), "data-label": "Faults", text: grouped(validator.faults) }),
          evidenceCell(key),
        ]);
      },
      ({ validator, verdict }) =>
        [verdict.state, verdict.reason, validator.last_vote_view, Math.round((silenceMs(validator) || 0) / 1000), validator.missed_finalizations, validator.faults, validator.key === leader, state.evidenceCount].join(","),
    );
    const counts = { up: 0, lagging: 0, down: 0, halted: 0 };
    for (const { verdict } of judged) counts[verdict.state] += 1;
    const n = judged.length;
    const f = Math.floor((n - 1) / 3);
    const unhealthy = counts.down + counts.halted;
    const parts = [counts.up + " of " + n + " up"];
    if (counts.lagging) parts.push(counts.lagging + " lagging");
    if (unhealthy) parts.push(unhealthy + " down");
    parts.push(n > 0 ? "tolerates " + f + " fault" + (f === 1 ? "" : "s") : "");
    const summary = setText("validators-summary", parts.filter(Boolean).join(" · "));
    summary.classList.toggle("warn", counts.lagging > 0 || (unhealthy > 0 && unhealthy <= f));
    summary.classList.toggle("bad", unhealthy > f);
    const blocked = validators.filter((validator) => state.corsBlocked.has(validator.key)).length;
    setText(
      "validators-hint",
      blocked > 0
        ? "Other validators' APIs do not let this page read their health, so their state comes from what this validator saw of their votes."
        : "Up: voting and answering. Lagging: silent " + LAGGING_SILENCE_MS / 1000 + " s longer than the others, behind in height, or missing most finalizations. Down: unreachable or silent for over " + DOWN_SILENCE_MS / 1000 + " s.",
    );
  }

  // ---------------------------------------------------------------------------------------
  // Transfers

  function transferSignature(transfer) {
    return [transfer.amount, transfer.timestamp, (transfer.flags || []).join(" ")].join(",");
  }

  function flagsText(flags) {
    return Array.isArray(flags) && flags.length > 0 ? flags.join(", ") : "";
  }

  function renderTransfers(transfers) {
    renderRows(
      $("recent-transfers").tBodies[0],
      transfers,
      (transfer) => String(transfer.id),
      (transfer) =>
        element("tr", { "data-transfer-id": transfer.id }, [
          element("td", {}, [
            element("span", { className: "mono id", title: transfer.id, text: shortDecimal(String(transfer.id)) }),
            element("span", { className: "secondary mono", text: clockTime(nsToMs(transfer.timestamp), true) }),
          ]),
          element("td", {}, [
            element("span", { className: "accounts" }, [accountButton(transfer.debit_account_id), element("span", { className: "arrow", "aria-label": "to", text: "→" }), accountButton(transfer.credit_account_id)]),
          ]),
          element("td", { className: "num" }, [
            amountElement(transfer.amount),
            element("span", { className: "secondary", text: "ledger " + transfer.ledger + " · code " + transfer.code + (flagsText(transfer.flags) ? " · " + flagsText(transfer.flags) : "") }),
          ]),
        ]),
      transferSignature,
    );
    $("transfers-empty").hidden = transfers.length > 0;
    setText("transfers-count", transfers.length > 0 ? "newest " + transfers.length : "");
  }

  /** Shows whether a read made with ?proof=true verifies, checked in this browser by verify.js. */
  function markProof(id, kind, answer, objectId) {
    if (window.TallyVerify) window.TallyVerify.show($(id), kind, answer, objectId);
  }

  // ---------------------------------------------------------------------------------------
  // Account lookup

  /** The account id typed by the user, or an error message. */
  function parseAccountId(raw) {
    const text = raw.trim();
    if (text.length === 0) return { error: "Enter an account id." };
    if (!/^[0-9]+$/.test(text)) return { error: "An account id is a whole number: digits 0-9 only." };
    const value = BigInt(text);
    if (value === 0n || value === U128_MAX) return { error: "Account ids are from 1 to 2^128 − 2." };
    if (value > U128_MAX) return { error: "An account id is at most 2^128 − 2 (39 digits)." };
    return { id: value.toString() };
  }

  async function lookUpAccount(id) {
    const generation = ++state.accountGeneration;
    const [account, transfers] = await Promise.allSettled([
      api("/v1/accounts/" + id + "?proof=true"),
      api("/v1/accounts/transfers?proof=true", { account_id: id, limit: ACCOUNT_TRANSFERS_LIMIT, flags: ["debits", "credits", "reversed"] }),
    ]);
    // A newer lookup started meanwhile: its answer wins.
    if (generation !== state.accountGeneration || !state.account || state.account.id !== id) return;
    if (account.status === "fulfilled") {
      state.account.data = account.value;
      state.account.error = null;
    } else {
      const failure = account.reason;
      state.account.data = null;
      state.account.error = failure.code === "account_not_found" ? "No account " + id + " on this chain (yet)." : "Lookup failed: " + failure.message + " (" + failure.code + ").";
    }
    const transfersRead = transfers.status === "fulfilled" && Array.isArray(transfers.value.transfers);
    state.account.transfers = transfersRead ? transfers.value.transfers : state.account.transfers;
    renderAccount();
    markProof("account-proof", state.account.data ? "account" : null, state.account.data, id);
    if (transfersRead) markProof("account-transfers-proof", "transfers", transfers.value);
  }

  function renderAccount() {
    const form = $("account-form");
    const result = $("account-result");
    const account = state.account;
    setText("account-error", account && account.error ? account.error : "");
    form.classList.toggle("has-error", Boolean(account && account.error));
    if (!account || !account.data) {
      result.hidden = true;
      result.removeAttribute("data-account-id");
      return;
    }
    const data = account.data;
    result.hidden = false;
    result.setAttribute("data-account-id", account.id);
    setText("account-shown-id", account.id);
    const flags = flagsText(data.flags);
    setText("account-meta", "ledger " + data.ledger + " · code " + data.code + (flags ? " · " + flags : ""));
    setDecimal("account-debits-posted", data.debits_posted);
    setDecimal("account-credits-posted", data.credits_posted);
    setDecimal("account-debits-pending", data.debits_pending);
    setDecimal("account-credits-pending", data.credits_pending);
    const credits = big(data.credits_posted);
    const debits = big(data.debits_posted);
    const net = credits !== null && debits !== null ? credits - debits : null;
    const netNode = fillGrouped($("account-net"), net === null ? "—" : groupedSigned(net));
    if (net === null) netNode.removeAttribute("data-value");
    else netNode.setAttribute("data-value", net.toString());
    const transfers = account.transfers || [];
    renderRows(
      $("account-transfers").tBodies[0],
      transfers,
      (transfer) => String(transfer.id),
      (transfer) => {
        const outgoing = transfer.debit_account_id === account.id;
        const flags = flagsText(transfer.flags);
        return element("tr", { "data-transfer-id": transfer.id }, [
          element("td", {}, [
            element("span", { className: "mono id", title: transfer.id, text: shortDecimal(String(transfer.id)) }),
            element("span", { className: "secondary mono", text: clockTime(nsToMs(transfer.timestamp), true) + (flags ? " · " + flags : "") }),
          ]),
          element("td", {}, [
            element("span", { className: "direction " + (outgoing ? "out" : "in"), text: outgoing ? "debit, to" : "credit, from" }),
            element("span", { className: "secondary" }, [accountButton(outgoing ? transfer.credit_account_id : transfer.debit_account_id)]),
          ]),
          element("td", { className: "num" }, [
            amountElement(transfer.amount, outgoing ? "−" : "+", outgoing ? "out" : "in"),
          ]),
        ]);
      },
      transferSignature,
    );
    $("account-transfers-empty").hidden = transfers.length > 0;
  }

  function selectAccount(raw) {
    const parsed = parseAccountId(raw);
    if (parsed.error) {
      state.account = { id: null, data: null, transfers: [], error: parsed.error };
      state.accountGeneration += 1;
      renderAccount();
      return;
    }
    if (!state.account || state.account.id !== parsed.id) {
      state.account = { id: parsed.id, data: null, transfers: [], error: null };
      $("account-transfers").tBodies[0].replaceChildren();
      delete $("account-transfers").tBodies[0].dataset.signature;
      delete $("account-transfers").tBodies[0].dataset.rendered;
    }
    $("account-id").value = parsed.id;
    history.replaceState(null, "", "#account=" + parsed.id);
    lookUpAccount(parsed.id);
  }

  // ---------------------------------------------------------------------------------------
  // The poll loop

  /** How long the height has not moved, if that is long enough to call the chain stalled. */
  function stalledMs() {
    if (state.heightChangedAtMs === null || state.statusAtMs === null) return null;
    const unchangedMs = state.statusAtMs - state.heightChangedAtMs;
    return unchangedMs >= CHAIN_STALL_ALERT_MS ? unchangedMs : null;
  }

  function renderConnection() {
    const body = document.body;
    let connection;
    let text;
    if (state.failures === 0 && state.halted) {
      connection = "halted";
      text = "Validator halted";
    } else if (state.failures === 0 && stalledMs() !== null) {
      connection = "stalled";
      text = "Stalled for " + waited(stalledMs());
    } else if (state.failures === 0 && state.lastSuccessMs !== null) {
      connection = "live";
      text = "Live";
    } else if (state.lastSuccessMs === null) {
      connection = state.failures > 0 ? "error" : "connecting";
      text = state.failures > 0 ? "Cannot reach the validator" : "Connecting…";
    } else {
      connection = "error";
      const silentMs = Date.now() - state.lastSuccessMs;
      text = "Stale: no answer for " + waited(silentMs);
    }
    body.setAttribute("data-connection", connection);
    setText("connection-text", text);
    const alert = $("alert");
    if (state.halted) {
      alert.textContent = "This validator has halted: its ledger disagreed with a finalized block, or its storage failed. The numbers below are its last state.";
      alert.hidden = false;
    } else if (state.failures > 0 && state.lastError) {
      alert.textContent = "The validator serving this page did not answer (" + state.lastError + "). Retrying every second; the numbers below are from " + (state.lastSuccessMs ? clockTime(state.lastSuccessMs) : "nowhere yet") + ".";
      alert.hidden = false;
    } else if (stalledMs() !== null) {
      alert.textContent = "No block has been finalized for " + waited(stalledMs()) + " (height " + grouped(state.status.height) + "). Consensus needs more than two thirds of the validators voting: see which are down or lagging below.";
      alert.hidden = false;
    } else {
      alert.hidden = true;
    }
    setText("updated", state.lastSuccessMs === null ? "never" : clockTime(state.lastSuccessMs));
  }

  async function poll() {
    const sentMs = Date.now();
    const [status, blocks, transfers] = await Promise.allSettled([
      api("/v1/status"),
      api("/v1/blocks?limit=" + blocksLimit()),
      api("/v1/transfers/recent?limit=" + TRANSFERS_LIMIT + "&proof=true"),
    ]);
    const receivedMs = Date.now();
    if (status.status === "fulfilled") {
      state.failures = 0;
      state.halted = false;
      state.lastSuccessMs = receivedMs;
      state.lastError = null;
      recordStatus(status.value, receivedMs);
      renderStatus();
      await refreshEvidence(status.value.evidence);
      // Probe the validators as soon as the page knows them, not a probe interval later.
      if (state.probes.size === 0) probeAll();
    } else {
      const failure = status.reason;
      state.halted = failure.code === "halted";
      if (state.halted) {
        state.failures = 0;
        state.lastSuccessMs = receivedMs;
      } else {
        state.failures += 1;
        state.lastError = failure.message;
      }
    }
    if (blocks.status === "fulfilled" && Array.isArray(blocks.value.blocks)) {
      const parsed = blocks.value.blocks.map(parseBlock).filter((block) => block !== null);
      recordBlocks(parsed, sentMs, receivedMs);
      renderBlocks(parsed);
    }
    if (transfers.status === "fulfilled" && Array.isArray(transfers.value.transfers)) {
      renderTransfers(transfers.value.transfers);
      markProof("transfers-proof", "transfers", transfers.value);
    }
    if (state.account && state.account.id) lookUpAccount(state.account.id);
    renderChart();
    renderValidators();
    renderConnection();
  }

  function schedule(task, intervalMs) {
    const run = async () => {
      const startedMs = Date.now();
      try {
        await task();
      } catch (error) {
        console.error("dashboard:", error);
      }
      const interval = document.hidden ? Math.max(intervalMs, POLL_INTERVAL_HIDDEN_MS) : intervalMs;
      setTimeout(run, Math.max(100, interval - (Date.now() - startedMs)));
    };
    run();
  }

  function start() {
    $("account-form").addEventListener("submit", (event) => {
      event.preventDefault();
      selectAccount($("account-id").value);
    });
    document.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-account]");
      if (!button) return;
      selectAccount(button.dataset.account);
      $("account-title").scrollIntoView({ behavior: "smooth", block: "nearest" });
    });
    const fromHash = /^#account=([0-9]+)$/.exec(location.hash);
    if (fromHash) {
      $("account-id").value = fromHash[1];
      selectAccount(fromHash[1]);
    }
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(renderChart, 100);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) renderChart();
    });
    schedule(poll, POLL_INTERVAL_MS);
    schedule(probeAll, PROBE_INTERVAL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
