// Drives Tally's dashboard in headless Chromium against a running cluster (`tally dev`): creates
// accounts and transfers through the HTTP API and checks that the page shows them.
//
//   TALLY_URL         a validator's API, e.g. http://127.0.0.1:8080 (required)
//   TALLY_TOKEN       the bearer token of the API's gateway endpoints (required)
//   TALLY_SCREENSHOT  where the 1280x800 screenshot goes (default /tmp/tally-dashboard.png)
//   CHROMIUM          the browser (default /usr/bin/chromium)
//   TALLY_GENESIS     the cluster's genesis.json, which the page is given to verify against (required)
//
// Run by scripts/dashboard-test.sh, which starts the cluster first.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = (process.env.TALLY_URL || "").replace(/\/+$/, "");
const TOKEN = process.env.TALLY_TOKEN || "";
const SCREENSHOT = process.env.TALLY_SCREENSHOT || "/tmp/tally-dashboard.png";
const SCREENSHOT_PHONE = SCREENSHOT.replace(/\.png$/, "") + "-phone.png";
const SCREENSHOT_FULL = SCREENSHOT.replace(/\.png$/, "") + "-full.png";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const GENESIS = process.env.TALLY_GENESIS || "";
// What Rust computes, for verify.js to match (crates/node/tests/verify_vectors.rs keeps it true).
const VECTORS = JSON.parse(readFileSync(new URL("./verify-vectors.json", import.meta.url), "utf8"));
const WAIT_MS = 30_000;
const REQUEST_ATTEMPTS_MAX = 20;

assert.ok(BASE_URL, "set TALLY_URL to a validator's API address");
assert.ok(TOKEN, "set TALLY_TOKEN to the API's bearer token");
assert.ok(GENESIS, "set TALLY_GENESIS to the cluster's genesis.json");

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
// A pending transfer between two other accounts: its proof carries its pending state too.
const dave = randomId();
const erin = randomId();
const pendingTransfer = { id: randomId(), debit_account_id: dave, credit_account_id: erin, amount: "9", ledger: LEDGER, code: CODE, flags: ["pending"] };

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
      await submit("/v1/accounts", { accounts: [alice, bob, carol, dave, erin].map((id) => ({ id, ledger: LEDGER, code: CODE })) }),
      5,
    );
    const answer = await submit("/v1/transfers", { transfers });
    assertAllCreated(answer, transfers.length);
    assertAllCreated(await submit("/v1/transfers", { transfers: [pendingTransfer, lateTransfer] }), 2);
    for (const transfer of [...transfers, pendingTransfer, lateTransfer]) {
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

  it("says NOT VERIFIED while it has no genesis to check against", async () => {
    await page.waitForSelector('#genesis-status[data-genesis="none"]', { timeout: WAIT_MS });
    for (const mark of ["#transfers-proof", "#account-proof"]) {
      await page.waitForSelector(`${mark}[data-verdict="unverified"]`, { timeout: WAIT_MS });
      assert.match(await page.textContent(mark), /^✗NOT VERIFIED: no genesis given/);
    }
  });

  it("computes BLAKE3, a genesis digest and a state receipt's verdict as Rust does", async () => {
    const outcome = await page.evaluate(async (vectors) => {
      const { blake3, hex, parseGenesis, verifyReceipt, Unverified } = window.TallyVerify;
      const input = (len) => Uint8Array.from({ length: len }, (_, index) => index % 251);
      const key = hex.from(vectors.blake3.key);
      const wrong = [];
      const expect = (what, got, want) => {
        if (got !== want) wrong.push(`${what}: ${got} != ${want}`);
      };
      // JSON with sorted keys: serde_json sorts them, verify.js keeps the API's order.
      const canonical = (value) =>
        JSON.stringify(value, (_, item) =>
          item && typeof item === "object" && !Array.isArray(item) ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : 1))) : item,
        );
      for (const vector of vectors.blake3.hashes) {
        const bytes = input(vector.len);
        expect(`hash ${vector.len}`, hex.to(blake3.hash(bytes)), vector.hash);
        expect(`keyed_hash ${vector.len}`, hex.to(blake3.keyedHash(key, bytes)), vector.keyed_hash);
        expect(`derive_key ${vector.len}`, hex.to(blake3.deriveKey(vectors.blake3.context, bytes)), vector.derive_key);
      }
      for (const vector of vectors.blake3.chaining_values) {
        const got = hex.to(blake3.chainingValue(key, input(vector.len), BigInt(vector.offset)));
        expect(`chaining value ${vector.len} at ${vector.offset}`, got, vector.chaining_value);
      }
      for (const vector of vectors.blake3.merges) {
        const [left, right] = [hex.from(vector.left), hex.from(vector.right)];
        expect("merge non-root", hex.to(blake3.mergeNonRoot(key, left, right)), vector.non_root);
        expect("merge root", hex.to(blake3.mergeRoot(key, left, right)), vector.root);
      }
      const fixture = vectors.state_receipt;
      const genesis = await parseGenesis(fixture.genesis);
      expect("genesis digest", genesis.digest, fixture.genesis_digest);
      expect("re-founded genesis digest", (await parseGenesis(fixture.founded_genesis)).digest, fixture.founded_genesis_digest);
      const proven = await verifyReceipt(fixture.receipt, genesis);
      expect("height", proven.height.toString(), fixture.height);
      expect("certified height", proven.certifiedHeight.toString(), fixture.certified_height);
      expect("signers", JSON.stringify(proven.signers), JSON.stringify(fixture.signers));
      const claims = canonical([fixture.accounts, fixture.transfers]);
      expect("accounts and transfers", canonical([proven.accounts, proven.transfers]), claims);
      // Every flipped byte, a byte less and a byte more are refused with a reason, or (a flipped
      // index within a chunk of the log) prove another transfer, which the page then does not
      // find among the proven ones: no change proves the same objects.
      const bytes = hex.from(fixture.receipt);
      const accepted = [];
      const reasons = new Set();
      const refuses = async (changed, what) => {
        try {
          const other = await verifyReceipt(hex.to(changed), genesis);
          if (canonical([other.accounts, other.transfers]) === claims) accepted.push(what);
          else reasons.add("proves other objects");
        } catch (error) {
          if (!(error instanceof Unverified)) accepted.push(`${what} threw ${error}`);
          reasons.add(error.message.replace(/[0-9a-f]{64}/g, "<hex>").replace(/\d+/g, "N"));
        }
      };
      for (let index = 0; index < bytes.length; index += 1) {
        const flipped = bytes.slice();
        flipped[index] ^= 1;
        await refuses(flipped, `byte ${index}`);
      }
      await refuses(bytes.slice(0, -1), "one byte less");
      await refuses(Uint8Array.from([...bytes, 0]), "one byte more");
      // The same receipt against another chain's genesis: the signatures are not its validators'.
      const other = JSON.parse(fixture.genesis);
      other.chain_id = 8;
      let otherChain = "accepted";
      try {
        await verifyReceipt(fixture.receipt, await parseGenesis(JSON.stringify(other)));
      } catch (error) {
        otherChain = error.message;
      }
      return { wrong, accepted, reasons: [...reasons].sort(), size: bytes.length, otherChain };
    }, VECTORS);
    assert.deepEqual(outcome.wrong, []);
    assert.deepEqual(outcome.accepted, [], `of ${outcome.size} bytes`);
    assert.ok(outcome.reasons.length >= 5, outcome.reasons.join("\n"));
    assert.match(outcome.otherChain, /signatures are not a quorum/);
  });

  it("verifies the recent transfers and an account against the genesis file it is given", async () => {
    await page.setInputFiles("#genesis-file", GENESIS);
    await page.waitForSelector('#genesis-status[data-genesis="file"]', { timeout: WAIT_MS });
    // The digest shown is the chain's own: the parent of its genesis block (the young chain's
    // newest 100 blocks reach down to it).
    const digest = await page.getAttribute("#genesis-digest-shown", "title");
    const blocks = await getJson("/v1/blocks?limit=100");
    const genesisBlock = blocks.blocks.find((block) => block.height === "0");
    assert.ok(genesisBlock, "the genesis block is among the newest 100");
    assert.equal(digest, genesisBlock.parent);
    assert.match(await page.textContent("#genesis-status"), /\(chain 1, 4 validators\), from your file \(genesis.json\)/);
    await page.fill("#account-id", bob);
    await page.click("#account-form button[type=submit]");
    const status = await getJson("/v1/status");
    for (const mark of ["#transfers-proof", "#account-proof", "#account-transfers-proof"]) {
      await page.waitForSelector(`${mark}[data-verdict="verified"]`, { timeout: WAIT_MS });
      assert.match(await page.textContent(mark), /^✓Verified in this browser: .* as of height \d+ \(final by [\d:]+\), signed by [34] of 4 validators, against genesis [0-9a-f]{12}$/);
      const height = BigInt(await page.getAttribute(mark, "data-height"));
      assert.ok(height > 0n && height <= BigInt(status.height) + 5n, `${mark} at height ${height}`);
    }
    assert.match(await page.textContent("#account-proof"), /the account as of height/);
    // The pending transfer is among those verified (its proof includes its pending state).
    await page.waitForSelector(`#recent-transfers tr[data-transfer-id="${pendingTransfer.id}"]`, { timeout: WAIT_MS });
    assert.match(await page.textContent("#transfers-proof"), /each of the \d+ transfers listed/);
  });

  it("says NOT VERIFIED when the validator changes an answer or its proof", async () => {
    const recent = /\/v1\/transfers\/recent\?/;
    const tamper = (change) => async (route) => {
      const response = await route.fetch();
      const answer = await response.json();
      change(answer);
      await route.fulfill({ response, json: answer });
    };
    const expectVerdict = async (selector, verdict, pattern) => {
      await page.waitForFunction(
        ([selector, verdict, pattern]) => {
          const node = document.querySelector(selector);
          return node.dataset.verdict === verdict && new RegExp(pattern).test(node.textContent);
        },
        [selector, verdict, pattern.source],
        { timeout: WAIT_MS },
      );
    };
    // A listed amount that is not the proven one.
    const richer = tamper((answer) => {
      answer.transfers[0].amount = (BigInt(answer.transfers[0].amount) + 1n).toString();
    });
    await page.route(recent, richer);
    await expectVerdict("#transfers-proof", "unverified", /^✗NOT VERIFIED: transfer \d+ shown differs from the proven one in amount$/);
    await page.unroute(recent, richer);
    await expectVerdict("#transfers-proof", "verified", /^✓Verified/);
    // One byte of the receipt's certificate (the last signature's) flipped.
    const forged = tamper((answer) => {
      const receipt = answer.proof.receipt;
      const last = (parseInt(receipt.slice(-2), 16) ^ 1).toString(16).padStart(2, "0");
      answer.proof.receipt = receipt.slice(0, -2) + last;
    });
    await page.route(recent, forged);
    await expectVerdict("#transfers-proof", "unverified", /^✗NOT VERIFIED: the header is not proven final: the certificate's signatures are not a quorum/);
    await page.unroute(recent, forged);
    await expectVerdict("#transfers-proof", "verified", /^✓Verified/);
    // An account whose balance is changed in the answer and in its receipt alike: the receipt's
    // account is no longer the one under the signed state digest.
    const account = new RegExp(`/v1/accounts/${bob}\\?proof=true$`);
    const richerBob = tamper((answer) => {
      // The first proven account starts after the parts (5 x 40 + 8), the included-request set
      // digest (32) and the account count (2); its credits_posted are its bytes 64 to 80.
      const at = 2 * (208 + 32 + 2 + 64);
      const credits = BigInt(answer.credits_posted) + 1000n;
      let little = "";
      for (let byte = 0; byte < 16; byte += 1) little += ((credits >> BigInt(8 * byte)) & 0xffn).toString(16).padStart(2, "0");
      answer.proof.receipt = answer.proof.receipt.slice(0, at) + little + answer.proof.receipt.slice(at + 32);
      answer.credits_posted = credits.toString();
    });
    await page.route(account, richerBob);
    await expectVerdict("#account-proof", "unverified", new RegExp(`^✗NOT VERIFIED: account ${bob} is not in the state the header commits to$`));
    await page.unroute(account, richerBob);
    await expectVerdict("#account-proof", "verified", /^✓Verified/);
    // An answer without its proof.
    const bare = tamper((answer) => {
      delete answer.proof;
    });
    await page.route(account, bare);
    await expectVerdict("#account-proof", "unverified", /^✗NOT VERIFIED: the answer carries no proof$/);
    await page.unroute(account, bare);
    await expectVerdict("#account-proof", "verified", /^✓Verified/);
  });

  it("fetches the genesis from the validator only as a digest it is given allows", async () => {
    const digest = await page.getAttribute("#genesis-digest-shown", "title");
    await page.click("#genesis-forget");
    await page.waitForSelector('#genesis-status[data-genesis="none"]', { timeout: WAIT_MS });
    await page.waitForSelector('#transfers-proof[data-verdict="unverified"]', { timeout: WAIT_MS });
    // Another digest: the validator's genesis is refused, and nothing is verified.
    await page.fill("#genesis-digest", "ab".repeat(32));
    await page.click("#genesis-fetch");
    await page.waitForFunction(() => /not the (ab)+ you gave/.test(document.querySelector("#genesis-error").textContent), null, { timeout: WAIT_MS });
    assert.equal(await page.getAttribute("#genesis-status", "data-genesis"), "none");
    // The digest from the file: accepted, and kept across a reload.
    await page.fill("#genesis-digest", digest);
    await page.click("#genesis-fetch");
    await page.waitForSelector('#genesis-status[data-genesis="validator-checked"]', { timeout: WAIT_MS });
    await page.waitForSelector('#transfers-proof[data-verdict="verified"]', { timeout: WAIT_MS });
    await page.reload({ waitUntil: "domcontentloaded" });
    await page.waitForSelector('#genesis-status[data-genesis="validator-checked"]', { timeout: WAIT_MS });
    assert.equal(await page.getAttribute("#genesis-digest-shown", "title"), digest);
    await page.waitForSelector('#transfers-proof[data-verdict="verified"]', { timeout: WAIT_MS });
    // Back to the file, for the screenshots.
    await page.setInputFiles("#genesis-file", GENESIS);
    await page.waitForSelector('#genesis-status[data-genesis="file"]', { timeout: WAIT_MS });
    await page.waitForSelector(`#account-result[data-account-id="${bob}"]:not([hidden])`, { timeout: WAIT_MS });
    await page.waitForSelector('#account-proof[data-verdict="verified"]', { timeout: WAIT_MS });
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

  it("lists the evidence of misbehaviour kept against a validator", async () => {
    const answer = await getJson("/v1/status");
    const accused = answer.validators.filter((validator) => !validator.self)[0];
    const row = `#validators tr[data-validator-key="${accused.key}"]`;
    assert.equal(await page.getAttribute(`${row} td[data-evidence]`, "data-evidence"), "0");
    // What a validator that saw a twin answers (the proof bytes are not checked by the page).
    const counted = JSON.stringify({ ...answer, evidence: 1, validators: answer.validators.map((validator) => ({ ...validator, faults: validator.key === accused.key ? 1 : 0 })) });
    const evidence = JSON.stringify({
      chain_id: answer.chain_id,
      kept_max: 1024,
      evidence: [{ kind: "conflicting_notarize", view: "12", validator: accused.key, proof: "07" }],
    });
    const serve = (body) => (route) => route.fulfill({ status: 200, contentType: "application/json", body });
    await page.route(BASE_URL + "/v1/status", serve(counted));
    await page.route(BASE_URL + "/v1/evidence", serve(evidence));
    await page.waitForSelector(`${row} td[data-evidence="1"]`, { timeout: WAIT_MS });
    assert.match(await page.textContent(`${row} td[data-evidence] li`), /^notarized two blocks in view 12$/);
    assert.equal(await page.getAttribute(`${row} td[data-evidence] a`, "href"), "/v1/evidence");
    await page.unroute(BASE_URL + "/v1/status");
    await page.unroute(BASE_URL + "/v1/evidence");
    await page.waitForSelector(`${row} td[data-evidence="0"]`, { timeout: WAIT_MS });
  });

  it("says how many faulty validators the cluster tolerates, and warns when none", async () => {
    const answer = await getJson("/v1/status");
    assert.equal(answer.faults_tolerated, 1, "tally dev runs 4 validators: f = 1");
    await page.waitForSelector('#faults-tolerated[data-value="1"]', { timeout: WAIT_MS });
    assert.equal(await page.textContent("#tolerance-note"), `faulty of ${answer.validators.length} · quorum ${answer.quorum}`);
    assert.ok(!(await page.getAttribute("#tolerance-card", "class")).includes("warn"));
    // What a validator of a three-validator cluster answers.
    const three = JSON.stringify({ ...answer, faults_tolerated: 0, quorum: 3, validators: answer.validators.slice(0, 3) });
    const serve = (route) => route.fulfill({ status: 200, contentType: "application/json", body: three });
    await page.route(BASE_URL + "/v1/status", serve);
    await page.waitForSelector('#faults-tolerated[data-value="0"]', { timeout: WAIT_MS });
    assert.equal(await page.textContent("#tolerance-note"), "of 3: one stop stops the chain");
    assert.ok((await page.getAttribute("#tolerance-card", "class")).includes("warn"));
    await page.unroute(BASE_URL + "/v1/status", serve);
    await page.waitForSelector('#faults-tolerated[data-value="1"]', { timeout: WAIT_MS });
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
    const wide = () =>
      Array.from(document.querySelectorAll("body *"))
        .filter((node) => node.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !node.closest(".table-wrap"))
        .map((node) => node.tagName + "#" + node.id + "." + node.className)
        .slice(0, 10)
        .join(" ");
    assert.equal(await page.evaluate(overflow), 0, "no horizontal scrolling at 390 px: " + (await page.evaluate(wide)));
    await page.screenshot({ path: SCREENSHOT_PHONE, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("raised no script errors", () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(consoleErrors, []);
  });
});
