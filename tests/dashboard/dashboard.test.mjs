// Drives Tally's dashboard in headless Chromium against a running cluster (`tally dev`): creates
// accounts and transfers through the HTTP API and checks that the page shows them.
//
//   TALLY_URL         a validator's API, e.g. http://127.0.0.1:8080 (required)
//   TALLY_TOKEN       the bearer token of the API's gateway endpoints (required)
//   TALLY_SCREENSHOT  where the 1280x800 screenshot goes (default /tmp/tally-dashboard.png)
//   CHROMIUM          the browser (default /usr/bin/chromium)
//
// Run by scripts/dashboard-test.sh, which starts the cluster first.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = (process.env.TALLY_URL || "").replace(/\/+$/, "");
const TOKEN = process.env.TALLY_TOKEN || "";
const SCREENSHOT = process.env.TALLY_SCREENSHOT || "/tmp/tally-dashboard.png";
const SCREENSHOT_PHONE = SCREENSHOT.replace(/\.png$/, "") + "-phone.png";
const SCREENSHOT_FULL = SCREENSHOT.replace(/\.png$/, "") + "-full.png";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 30_000;
const REQUEST_ATTEMPTS_MAX = 20;

assert.ok(BASE_URL, "set TALLY_URL to a validator's API address");
assert.ok(TOKEN, "set TALLY_TOKEN to the API's bearer token");

// Ids and amounts above 2^53, where JavaScript numbers lose digits: the page must show them exactly.
const LEDGER = 7;
const CODE = 10;
const randomId = () => (BigInt("0x" + randomBytes(15).toString("hex")) | (1n << 100n)).toString();
const alice = randomId();
const bob = randomId();
const carol = randomId();
const amountAliceToBob = ((1n << 80n) + 7n).toString(); // 1208925819614629174706183
const amountBobToCarol = ((1n << 53n) + 1n).toString(); // 9007199254740993: a Number would say ...992
const amountCarolToAlice = "1";
const transfers = [
  { id: randomId(), debit_account_id: alice, credit_account_id: bob, amount: amountAliceToBob, ledger: LEDGER, code: CODE },
  { id: randomId(), debit_account_id: bob, credit_account_id: carol, amount: amountBobToCarol, ledger: LEDGER, code: CODE },
  { id: randomId(), debit_account_id: carol, credit_account_id: alice, amount: amountCarolToAlice, ledger: LEDGER, code: CODE },
];
const lateTransfer = { id: randomId(), debit_account_id: carol, credit_account_id: bob, amount: "5", ledger: LEDGER, code: CODE };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** POSTs to a gateway endpoint until the request is final; answers the 200 body. */
async function submit(path, body) {
  const requestBody = JSON.stringify({ ...body, request_id: randomId() });
  for (let attempt = 1; attempt <= REQUEST_ATTEMPTS_MAX; attempt += 1) {
    const response = await fetch(BASE_URL + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + TOKEN },
      body: requestBody,
    });
    const answer = await response.json();
    if (response.status === 200) return answer;
    // Pending (not final within the wait limit) or busy: the same request id again is a safe retry.
    if (response.status === 202 || response.status === 429) {
      await sleep(Number(answer.retry_after_ms) || 500);
      continue;
    }
    assert.fail(`${path} answered ${response.status}: ${JSON.stringify(answer)}`);
  }
  assert.fail(`${path} was not final after ${REQUEST_ATTEMPTS_MAX} attempts`);
}

async function getJson(path) {
  const response = await fetch(BASE_URL + path);
  assert.equal(response.status, 200, `${path} answered ${response.status}`);
  return response.json();
}

function assertAllCreated(answer, count) {
  assert.equal(answer.results.length, count, JSON.stringify(answer));
  for (const result of answer.results) assert.equal(result.status, "created", JSON.stringify(answer));
}

describe("the dashboard", () => {
  let context;
  let page;
  let userDataDir;
  const pageErrors = [];
  const consoleErrors = [];
  let heightBefore;
  let pointsBefore;

  before(async () => {
    userDataDir = mkdtempSync(join(tmpdir(), "tally-dashboard-chromium-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      // Reading another validator's health across origins is refused when its API sends no
      // CORS headers; the page falls back to what this validator saw, by design.
      if (/CORS policy|Failed to load resource/.test(message.text())) return;
      consoleErrors.push(message.text());
    });
    await page.goto(BASE_URL + "/", { waitUntil: "domcontentloaded" });
  });

  after(async () => {
    if (context) await context.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it("loads its script and styles from the validator and shows the chain's status", async () => {
    await page.waitForSelector("#height[data-value]", { timeout: WAIT_MS });
    heightBefore = BigInt(await page.getAttribute("#height", "data-value"));
    pointsBefore = Number(await page.getAttribute("#chart", "data-points"));
    const status = await getJson("/v1/status");
    assert.ok(heightBefore <= BigInt(status.height), `page height ${heightBefore} is ahead of the validator's ${status.height}`);
    assert.equal(await page.getAttribute("body", "data-connection"), "live");
    assert.match(await page.textContent("#chain-id"), /\d/);
    assert.equal((await page.textContent("#chain-id")).replace(/,/g, ""), String(status.chain_id));
    assert.match(await page.textContent("#state-digest"), /^[0-9a-f]{64}$/);
    const styled = await page.evaluate(() => getComputedStyle(document.querySelector(".topbar")).display);
    assert.equal(styled, "flex", "dashboard.css is applied");
  });

  it("lists every validator with its state, and all of them come up", async () => {
    const status = await getJson("/v1/status");
    const count = status.validators.length;
    assert.ok(count >= 4, `tally dev runs ${count} validators`);
    await page.waitForFunction(
      (expected) => {
        const rows = document.querySelectorAll("#validators tbody tr[data-validator-key]");
        return rows.length === expected && Array.from(rows).every((row) => row.dataset.state === "up");
      },
      count,
      { timeout: WAIT_MS },
    );
    const keys = await page.$$eval("#validators tbody tr", (rows) => rows.map((row) => row.dataset.validatorKey));
    assert.deepEqual(keys, status.validators.map((validator) => validator.key));
    assert.equal(await page.$$eval("#validators tr[data-self]", (rows) => rows.length), 1);
    assert.match(await page.textContent("#validators-summary"), new RegExp(`${count} of ${count} up`));
  });

  it("shows new transfers in the recent list, with exact amounts", async () => {
    assertAllCreated(
      await submit("/v1/accounts", { accounts: [alice, bob, carol].map((id) => ({ id, ledger: LEDGER, code: CODE })) }),
      3,
    );
    const answer = await submit("/v1/transfers", { transfers });
    assertAllCreated(answer, transfers.length);
    assertAllCreated(await submit("/v1/transfers", { transfers: [lateTransfer] }), 1);
    for (const transfer of [...transfers, lateTransfer]) {
      const row = `#recent-transfers tbody tr[data-transfer-id="${transfer.id}"]`;
      await page.waitForSelector(row, { timeout: WAIT_MS });
      assert.equal(await page.getAttribute(`${row} .amount`, "data-value"), transfer.amount);
    }
    // Newest first: the late transfer above the earlier ones.
    const ids = await page.$$eval("#recent-transfers tbody tr", (rows) => rows.map((row) => row.dataset.transferId));
    assert.ok(ids.indexOf(lateTransfer.id) < ids.indexOf(transfers[0].id), ids.join(" "));
    assert.equal(await page.textContent(`#recent-transfers tr[data-transfer-id="${transfers[0].id}"] .amount`), "1,208,925,819,614,629,174,706,183");
    assert.ok(BigInt(answer.height) > heightBefore);
  });

  it("shows the height rising", async () => {
    await page.waitForFunction((before) => BigInt(document.querySelector("#height").dataset.value) > BigInt(before), heightBefore.toString(), {
      timeout: WAIT_MS,
    });
    const shown = BigInt(await page.getAttribute("#height", "data-value"));
    const status = await getJson("/v1/status");
    assert.ok(shown <= BigInt(status.height), `page height ${shown} is not ahead of the validator's ${status.height}`);
  });

  it("plots throughput and finality latency points over time", async () => {
    await page.waitForFunction(
      (before) => {
        const chart = document.querySelector("#chart");
        return Number(chart.dataset.points) >= before + 3 && Number(chart.dataset.latencyPoints) >= 3;
      },
      pointsBefore,
      { timeout: WAIT_MS },
    );
    assert.ok((await page.$$("#chart path.line.throughput")).length === 1);
    assert.ok((await page.$$("#chart path.line.latency")).length === 1);
    // The transfers' events were finalized, so some sample rises above zero once the blocks
    // that carry them are on the chart.
    await page.waitForFunction(
      () => {
        const peak = document.querySelector("#throughput-peak").textContent;
        return peak !== "0" && peak !== "—";
      },
      null,
      { timeout: WAIT_MS },
    );
    assert.match(await page.textContent("#latency-now"), /^\d+(\.\d+)? (ms|s)$/);
  });

  it("looks up an account: balances to the unit, and its transfers", async () => {
    await page.fill("#account-id", bob);
    await page.click("#account-form button[type=submit]");
    await page.waitForSelector(`#account-result[data-account-id="${bob}"]:not([hidden])`, { timeout: WAIT_MS });
    // Bob received 2^80 + 7 and 5, and sent 2^53 + 1.
    const credits = BigInt(amountAliceToBob) + 5n;
    const debits = BigInt(amountBobToCarol);
    await page.waitForFunction(
      (expected) => document.querySelector("#account-credits-posted").dataset.value === expected,
      credits.toString(),
      { timeout: WAIT_MS },
    );
    assert.equal(await page.getAttribute("#account-debits-posted", "data-value"), debits.toString());
    assert.equal(await page.getAttribute("#account-debits-pending", "data-value"), "0");
    assert.equal(await page.getAttribute("#account-credits-pending", "data-value"), "0");
    assert.equal(await page.getAttribute("#account-net", "data-value"), (credits - debits).toString());
    assert.equal(await page.textContent("#account-credits-posted"), "1,208,925,819,614,629,174,706,188");
    for (const transfer of [transfers[0], transfers[1], lateTransfer]) {
      await page.waitForSelector(`#account-transfers tr[data-transfer-id="${transfer.id}"]`, { timeout: WAIT_MS });
    }
    const rows = await page.$$eval("#account-transfers tbody tr", (list) => list.map((row) => row.dataset.transferId));
    assert.equal(rows.length, 3, "bob has exactly three transfers");
    assert.equal(rows[0], lateTransfer.id, "newest first");
    assert.equal(new URL(page.url()).hash, "#account=" + bob);
  });

  it("follows a click on an account id in the transfer list", async () => {
    await page.click(`#recent-transfers tr[data-transfer-id="${transfers[2].id}"] button[data-account="${carol}"]`);
    await page.waitForSelector(`#account-result[data-account-id="${carol}"]`, { timeout: WAIT_MS });
    // Carol received 2^53 + 1 and sent 1 and 5.
    await page.waitForFunction(
      (expected) => document.querySelector("#account-net").dataset.value === expected,
      (BigInt(amountBobToCarol) - 6n).toString(),
      { timeout: WAIT_MS },
    );
  });

  it("refuses a malformed account id and reports an unknown one", async () => {
    await page.fill("#account-id", "12x");
    await page.click("#account-form button[type=submit]");
    await page.waitForFunction(() => /digits 0-9/.test(document.querySelector("#account-error").textContent));
    assert.equal(await page.isHidden("#account-result"), true);
    await page.fill("#account-id", (1n << 128n).toString());
    await page.click("#account-form button[type=submit]");
    await page.waitForFunction(() => /at most/.test(document.querySelector("#account-error").textContent));
    const unknown = randomId();
    await page.fill("#account-id", unknown);
    await page.click("#account-form button[type=submit]");
    await page.waitForFunction((id) => document.querySelector("#account-error").textContent.includes("No account " + id), unknown, {
      timeout: WAIT_MS,
    });
    assert.equal(await page.isHidden("#account-result"), true);
    // Back to a real account for the screenshots.
    await page.fill("#account-id", bob);
    await page.click("#account-form button[type=submit]");
    await page.waitForSelector(`#account-result[data-account-id="${bob}"]:not([hidden])`, { timeout: WAIT_MS });
  });

  it("shows recent blocks, newest first", async () => {
    const heights = await page.$$eval("#recent-blocks tbody tr", (rows) => rows.map((row) => BigInt(row.dataset.height)));
    assert.ok(heights.length > 0);
    for (let index = 1; index < heights.length; index += 1) assert.ok(heights[index - 1] > heights[index]);
  });

  it("marks a validator down when its API cannot be reached, and up again after", async () => {
    const status = await getJson("/v1/status");
    const other = status.validators.find((validator) => !validator.self);
    const origin = new URL(/^https?:\/\//.test(other.api) ? other.api : "http://" + other.api).origin;
    const row = `#validators tr[data-validator-key="${other.key}"]`;
    // The browser's requests to that validator fail as if it were down.
    const refuse = (route) => route.abort("connectionrefused");
    await page.context().route(origin + "/**", refuse);
    await page.waitForSelector(`${row}[data-state="down"]`, { timeout: WAIT_MS });
    assert.match(await page.textContent(`${row} .reason`), /API/);
    assert.match(await page.textContent("#validators-summary"), /1 down/);
    await page.context().unroute(origin + "/**", refuse);
    await page.waitForSelector(`${row}[data-state="up"]`, { timeout: WAIT_MS });
  });

  it("marks a validator lagging when its own height trails the chain's", async () => {
    const status = await getJson("/v1/status");
    const other = status.validators.filter((validator) => !validator.self)[1];
    const origin = new URL(/^https?:\/\//.test(other.api) ? other.api : "http://" + other.api).origin;
    const row = `#validators tr[data-validator-key="${other.key}"]`;
    // That validator's status says it is still at height 1, as if it had stopped executing.
    const answer = await (await fetch(origin + "/v1/status")).json();
    const behind = JSON.stringify({ ...answer, height: "1" });
    const stale = (route) =>
      route.fulfill({ status: 200, contentType: "application/json", headers: { "Access-Control-Allow-Origin": "*" }, body: behind });
    await page.context().route(origin + "/v1/status", stale);
    await page.waitForSelector(`${row}[data-state="lagging"]`, { timeout: WAIT_MS });
    assert.match(await page.textContent(`${row} .reason`), /^height 1, [\d,]+ behind$/);
    await page.context().unroute(origin + "/v1/status", stale);
    await page.waitForSelector(`${row}[data-state="up"]`, { timeout: WAIT_MS });
  });

  it("marks a validator lagging when it is silent while the others vote, not when all are idle", async () => {
    const answer = await getJson("/v1/status");
    const other = answer.validators.filter((validator) => !validator.self)[2];
    const row = `#validators tr[data-validator-key="${other.key}"]`;
    const withSilence = (silenceOf) =>
      JSON.stringify({ ...answer, validators: answer.validators.map((validator) => ({ ...validator, last_seen_ms: silenceOf(validator) })) });
    const serve = (body) => (route) =>
      route.fulfill({ status: 200, contentType: "application/json", headers: { "Access-Control-Allow-Origin": "*" }, body });
    // An idle cluster: every validator last voted 8 s ago (one view per heartbeat). All up.
    const idle = serve(withSilence(() => 8000));
    await page.route(BASE_URL + "/v1/status", idle);
    await page.waitForFunction((selector) => (document.querySelector(selector)?.textContent || "").includes("8 s ago"), row, {
      timeout: WAIT_MS,
    });
    assert.equal(await page.getAttribute(row, "data-state"), "up");
    await page.unroute(BASE_URL + "/v1/status", idle);
    // The others voted 100 ms ago; this one 20 s ago.
    const silent = serve(withSilence((validator) => (validator.key === other.key ? 20000 : 100)));
    await page.route(BASE_URL + "/v1/status", silent);
    await page.waitForSelector(`${row}[data-state="lagging"]`, { timeout: WAIT_MS });
    assert.match(await page.textContent(`${row} .reason`), /^no vote for 20 s$/);
    await page.unroute(BASE_URL + "/v1/status", silent);
    await page.waitForSelector(`${row}[data-state="up"]`, { timeout: WAIT_MS });
  });

  it("says so when its own validator stops answering, and recovers", async () => {
    const refuse = (route) => route.abort("connectionrefused");
    await page.route(BASE_URL + "/v1/status", refuse);
    await page.waitForSelector('body[data-connection="error"]', { timeout: WAIT_MS });
    assert.equal(await page.isVisible("#alert"), true);
    assert.match(await page.textContent("#alert"), /did not answer/);
    await page.unroute(BASE_URL + "/v1/status", refuse);
    await page.waitForSelector('body[data-connection="live"]', { timeout: WAIT_MS });
    assert.equal(await page.isHidden("#alert"), true);
  });

  it("calls the chain stalled when the height stops moving", async () => {
    // Every status answer repeats one real answer, as if nothing were finalized any more.
    const frozen = JSON.stringify(await getJson("/v1/status"));
    const freeze = (route) => route.fulfill({ status: 200, contentType: "application/json", body: frozen });
    await page.route(BASE_URL + "/v1/status", freeze);
    await page.waitForSelector('body[data-connection="stalled"]', { timeout: WAIT_MS });
    assert.match(await page.textContent("#alert"), /No block has been finalized for/);
    await page.unroute(BASE_URL + "/v1/status", freeze);
    await page.waitForSelector('body[data-connection="live"]', { timeout: WAIT_MS });
  });

  it("fits a phone's width and 1280x800, and leaves screenshots", async () => {
    await page.waitForFunction(() => Array.from(document.querySelectorAll("#validators tbody tr")).every((row) => row.dataset.state === "up"), undefined, {
      timeout: WAIT_MS,
    });
    const overflow = () => document.documentElement.scrollWidth - document.documentElement.clientWidth;
    await page.screenshot({ path: SCREENSHOT });
    await page.screenshot({ path: SCREENSHOT_FULL, fullPage: true });
    assert.equal(await page.evaluate(overflow), 0, "no horizontal scrolling at 1280 px");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(1500);
    assert.equal(await page.evaluate(overflow), 0, "no horizontal scrolling at 390 px");
    await page.screenshot({ path: SCREENSHOT_PHONE, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("raised no script errors", () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(consoleErrors, []);
  });
});
