// Loads a timeline page kpo wrote in Debian's headless Chromium and prints what the DOM shows:
// each bar's task, attempt and segments with their computed fill, the reasons shown, and the
// summary's rows. Takes a screenshot. Used by tests/it/timeline.rs:
//   node timeline.mjs PAGE.html SCREENSHOT.png
import { chromium } from "playwright-core";

const [page, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const tab = await browser.newPage({ viewport: { width: 1700, height: 260 } });
  // Anything the page asks of the network fails the check: it must be self-contained.
  const requests = [];
  tab.on("request", (r) => {
    if (!r.url().startsWith("file:")) requests.push(r.url());
  });
  await tab.goto(`file://${page}`);
  const seen = await tab.evaluate(() => ({
    bars: [...document.querySelectorAll("g.bar")].map((g) => ({
      task: g.dataset.task,
      attempt: Number(g.dataset.attempt),
      outcome: g.dataset.outcome,
      segments: [...g.querySelectorAll("rect.seg")].map((r) => ({
        kind: r.dataset.kind,
        fill: getComputedStyle(r).fill,
        x: Number(r.getAttribute("x")),
        width: Number(r.getAttribute("width")),
      })),
      reason: g.querySelector("text.reason")?.textContent ?? null,
    })),
    summary: [...document.querySelectorAll("table.summary tbody tr")].map((tr) =>
      [...tr.querySelectorAll("td")].map((td) => td.textContent),
    ),
    scripts: document.querySelectorAll("script").length,
  }));
  await tab.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ ...seen, requests }));
} finally {
  await browser.close();
}
