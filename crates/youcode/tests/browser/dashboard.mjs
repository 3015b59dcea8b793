// Drives the dashboard at $DASHBOARD_URL/admin in Debian's chromium (playwright-core over the
// DevTools protocol): a USER is refused, an ADMIN signs in, sees the figures move after
// requests, invalidates a tag, tries a bad tag and the warm button, clears the cache and sees
// the key count drop, then saves a screenshot to $SCREENSHOT. Every wait has a timeout; any
// failure exits non-zero with the reason. Run by the Rust test `dashboard_in_chromium`.
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("DASHBOARD_URL");
// Long enough for a loaded machine: the page refreshes its figures every second, but under a
// full test suite one refresh may take seconds.
const WAIT = { timeout: 40000, polling: 100 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // Root in a container has no user namespace for chromium's sandbox.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
  timeout: 30000,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(WAIT.timeout);
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`${base}/admin`);

  async function signIn(email, password) {
    await page.locator("#signin").waitFor({ state: "visible" });
    await page.fill("#email", email);
    await page.fill("#password", password);
    await page.click("#signin-button");
  }
  // Waits until the figure `id` shows a number that satisfies `test`; answers that number (read
  // in the same instant, so a refresh under way, which shows "–", is never taken for 0).
  async function until(id, test, what) {
    try {
      const shown = await page.waitForFunction(
        ([id, source]) => {
          const text = document.querySelector(id).textContent;
          const n = Number(text.replace(/[^0-9]/g, ""));
          return text !== "–" && new Function("n", source)(n) && { n };
        },
        [id, `return ${test};`],
        WAIT,
      );
      return (await shown.jsonValue()).n;
    } catch (error) {
      throw new Error(`${what}: ${id} stayed at ${await page.textContent(id)}`);
    }
  }
  async function traffic(rounds) {
    for (let round = 0; round < rounds; round++) {
      for (let page = 1; page <= 4; page++) {
        const reply = await fetch(`${base}/api/public/lessons?page=${page}&limit=${round % 3 + 1}`);
        if (reply.status !== 200) throw new Error(`public lessons answered ${reply.status}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  // A USER's token is refused with the API's 403, shown as a message.
  await signIn(env("USER_EMAIL"), env("USER_PASSWORD"));
  await page.waitForFunction(() => /403 forbidden/.test(document.querySelector("#message").textContent), null, WAIT);
  if (!(await page.isVisible("#signin"))) throw new Error("a USER stays at the sign-in form");

  // An ADMIN sees the board, with the live stream open.
  await signIn(env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await page.locator("#board").waitFor({ state: "visible" });
  await page.waitForFunction(() => document.querySelector("#live").textContent === "live", null, WAIT);
  const keys = await until("#keys", "n >= 0", "the key count shows");
  const lookups = await until("#lookups", "n >= 0", "the lookup count shows");

  // Requests move the figures.
  await traffic(12);
  await until("#lookups", `n >= ${lookups + 40}`, "lookups grow with requests");
  await until("#keys", `n > ${keys}`, "keys grow with new entries");
  await page.waitForFunction(
    () => [...document.querySelectorAll("#routes td:first-child")].some((td) => td.textContent === "GET /api/public/lessons"),
    null, WAIT);

  // Invalidating a tag shows the answer and the live event; a bad tag shows the 400.
  await page.fill("#tag", "course:42");
  await page.click("#invalidate");
  await page.waitForFunction(() => document.querySelector("#action-result").textContent.startsWith("Invalidated"), null, WAIT);
  await page.waitForFunction(() => document.querySelector("#events").textContent.includes("course:42"), null, WAIT);
  await page.fill("#tag", "");
  await page.click("#invalidate");
  await page.waitForFunction(() => /400 invalid_body/.test(document.querySelector("#action-result").textContent), null, WAIT);

  // The warm button warms the course's page, its 3 lessons and 3 public pages.
  await page.fill("#warm-top", "20");
  await page.click("#warm");
  await page.waitForFunction(() => /^Warmed: .*"warmed":7/.test(document.querySelector("#action-result").textContent), null, WAIT);
  const warmed = await page.textContent("#action-result");

  // Clearing drops the key count (the 7 warmed entries at least were there).
  await traffic(4);
  const before = await until("#keys", "n >= 7", "entries are stored before the clear");
  await page.click("#clear");
  await page.waitForFunction(() => document.querySelector("#action-result").textContent.startsWith("Cleared"), null, WAIT);
  const after = await until("#keys", `n < ${before}`, "the key count drops after a clear");
  await page.waitForFunction(() => document.querySelector("#events").textContent.includes("keys deleted"), null, WAIT);

  // A few more seconds of traffic, so that the chart has a line to show.
  await traffic(8);
  await page.waitForTimeout(1500);
  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });
  if (errors.length) throw new Error(`the page threw: ${errors.join("; ")}`);
  console.log(JSON.stringify({ lookupsBefore: lookups, keysBefore: keys, keysBeforeClear: before,
    keysAfterClear: after, warm: warmed }));
} finally {
  await browser.close();
}
