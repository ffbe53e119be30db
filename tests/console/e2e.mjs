// The console in a real browser: Debian's chromium, headless, driven by playwright-core,
// against a running `roster up`. Run by host/tests/all/console.rs, which prepares the
// accounts and checks in the store what the browser did; this script does what people
// do in the browser and writes what it did to $ARTIFACTS/results.json, with a screenshot
// of every page beside it.
//
// Environment: ROSTER_BASE (http://127.0.0.1:PORT), ADMIN_LINK, REVIEWER_LINK,
// VIEWER_LINK (one-time sign-in paths), INSTALL_REFERENCE (registry/repository:tag to
// install through the review page), KILL_DOMAIN, SAMPLE_LEAD (object/id of a lead the
// built rule is tried on), ADMIN_TOKEN (an API token, to create leads the rule runs on),
// ARTIFACTS (a directory).

import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("ROSTER_BASE");
const artifacts = env("ARTIFACTS");
mkdirSync(artifacts, { recursive: true });
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const results = { pages: [], axe: {}, problems: [], consoleErrors: [] };
const check = (ok, message) => {
  if (!ok) results.problems.push(message);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});

// A browser context signed in through a one-time link. `audit` contexts bypass the CSP
// so that axe-core can be injected; the others run the pages as they are served.
async function signIn(link, name, { audit = false } = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    bypassCSP: audit,
  });
  const page = await context.newPage();
  page.on("dialog", (dialog) => dialog.accept());
  page.on("pageerror", (e) => results.consoleErrors.push(`${name}: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of (403|404|409|422)/.test(m.text())) {
      results.consoleErrors.push(`${name}: ${m.text()}`);
    }
  });
  await page.goto(base + link);
  await page.click("form[action='/login'] button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
  return page;
}

// A screenshot and an accessibility audit of the page as it is now.
async function record(page, name, { axe = true } = {}) {
  await page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
  results.pages.push(name);
  if (!axe) return;
  await page.addScriptTag({ content: axeSource });
  const found = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  results.axe[name] = found;
}

async function visit(page, path, name) {
  const answer = await page.goto(base + path);
  check(answer && answer.status() === 200, `${path} answered ${answer && answer.status()}`);
  await record(page, name);
}

// Ids of the cards on the inbox, in order.
async function cardIds(page) {
  return page.$$eval("#held-list article.held", (cards) => cards.map((c) => c.id.slice(5)));
}

try {
  // The sign-in page itself.
  {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    const answer = await page.goto(base + "/");
    check(page.url().includes("/login"), "an anonymous visit is sent to the sign-in page");
    results.headers = answer.headers();
    await record(page, "01-sign-in");
    await context.close();
  }

  // A reviewer approves one held action (by keyboard), edits another, rejects a third.
  {
    const page = await signIn(env("REVIEWER_LINK"), "reviewer");
    await page.goto(base + "/approvals");
    const ids = await cardIds(page);
    check(ids.length >= 3, `the reviewer sees at least three held actions (saw ${ids.length})`);

    await page.keyboard.press("j");
    const selected = await page.$eval(".held[aria-current='true']", (c) => c.id.slice(5));
    check(selected === ids[0], `j selects the first held action (${selected}, not ${ids[0]})`);
    await page.keyboard.press("a");
    await page.waitForURL(/done=approve/);
    results.approved = selected;
    check(!(await cardIds(page)).includes(selected), "an approved action leaves the inbox");

    // Edit one: a text field of a record, else a message's body.
    const editable = await page.$$eval("#held-list article.held", (cards) => {
      for (const card of cards) {
        const typed = card.querySelector("details.edit input[name^='type:'][value='text']");
        if (typed) return { id: card.id.slice(5), field: typed.name.slice(5) };
      }
      for (const card of cards) {
        if (card.querySelector("details.edit textarea[name=body]")) return { id: card.id.slice(5), field: "body" };
      }
      return null;
    });
    check(editable !== null, "some held action has a text field or a message to edit");
    if (editable) {
      const card = page.locator(`[id="held-${editable.id}"]`);
      await card.locator("details.edit summary").click();
      const value = "Edited in the console <b>safely</b>";
      const field = editable.field === "body"
        ? card.locator("details.edit textarea[name=body]")
        : card.locator(`input[name="field:${editable.field}"]`);
      await field.fill(value);
      await card.locator("details.edit button[type=submit]").click();
      await page.waitForURL(/done=edit/);
      results.edited = { id: editable.id, field: editable.field, value };
      // What a person typed is shown as text, never as markup.
      await page.goto(`${base}/approvals/${encodeURIComponent(editable.id)}`);
      results.editedShownAsText = (await page.locator("main").innerText()).includes(value);
      results.editedMarkup = await page.locator("main b").count();
      await page.goto(base + "/approvals");
    }

    const left = await cardIds(page);
    const reject = left.find((id) => id !== results.approved && id !== (results.edited || {}).id);
    check(reject !== undefined, "a third held action is left to reject");
    if (reject) {
      const card = page.locator(`[id="held-${reject}"]`);
      await card.locator("form.reject input[name=reason]").fill("Not this one: checked by the console test");
      await card.locator("form.reject button[type=submit]").click();
      await page.waitForURL(/done=reject/);
      results.rejected = reject;
    }
    await record(page, "05-approvals-after-decisions", { axe: false });
    await page.context().close();
  }

  // A viewer sees held actions but no decision buttons, and a forged request is refused.
  {
    const page = await signIn(env("VIEWER_LINK"), "viewer");
    await page.goto(base + "/approvals");
    const ids = await cardIds(page);
    results.viewerCards = ids.length;
    results.viewerButtons = await page.locator("#held-list button[data-verdict]").count();
    results.viewerNav = await page.$$eval("header.top nav a", (links) => links.map((a) => a.textContent.trim()));
    const csrf = await page.locator("form[action='/logout'] input[name=csrf]").inputValue();
    const target = ids[0] || "apr-none";
    const forged = await page.request.post(`${base}/approvals/${encodeURIComponent(target)}/decide`, {
      form: { csrf, verdict: "approve" },
      headers: { origin: base },
      maxRedirects: 0,
    });
    const forgedKill = await page.request.post(`${base}/kill`, {
      form: { csrf, scope: "all", reason: "forged", confirm: "yes" },
      headers: { origin: base },
      maxRedirects: 0,
    });
    const noCsrf = await page.request.post(`${base}/approvals/${encodeURIComponent(target)}/decide`, {
      form: { verdict: "approve" },
      headers: { origin: base },
      maxRedirects: 0,
    });
    const otherSite = await page.request.post(`${base}/approvals/${encodeURIComponent(target)}/decide`, {
      form: { csrf, verdict: "approve" },
      headers: { origin: "http://attacker.example" },
      maxRedirects: 0,
    });
    results.forged = {
      target,
      decide: forged.status(),
      kill: forgedKill.status(),
      withoutCsrf: noCsrf.status(),
      otherSite: otherSite.status(),
    };
    await page.screenshot({ path: `${artifacts}/06-approvals-as-viewer.png`, fullPage: false });
    results.pages.push("06-approvals-as-viewer");
    await page.context().close();
  }

  // An admin: every page (screenshot and accessibility audit), live updates, an install
  // through the review page, and the kill switch on a domain.
  {
    const page = await signIn(env("ADMIN_LINK"), "admin", { audit: true });
    await visit(page, "/", "02-dashboard");
    await visit(page, "/?range=24h", "02-dashboard-24h");
    await visit(page, "/value", "03-value");

    await page.goto(base + "/approvals");
    const before = await cardIds(page);
    // New held actions arrive without a reload (the demo keeps proposing).
    try {
      await page.waitForSelector("#held-list article.held.fresh", { timeout: 60000 });
      results.liveArrived = true;
    } catch {
      results.liveArrived = false;
    }
    results.liveCount = (await cardIds(page)).length - before.length;
    await record(page, "04-approvals");
    if (before.length > 0) await visit(page, `/approvals/${encodeURIComponent(before[0])}`, "04-approval");

    await visit(page, "/workers", "07-workers");
    const worker = await page.$eval("table tbody th a", (a) => a.getAttribute("href"));
    await visit(page, worker, "08-worker");

    await visit(page, "/audit", "09-audit");
    const entry = await page.$eval("table tbody td a", (a) => a.getAttribute("href"));
    await visit(page, entry, "10-audit-entry");
    await page.goto(base + "/audit");
    await page.click("form[action='/audit/verify'] button");
    await page.waitForLoadState();
    results.verified = await page.locator("p.notice.done").count();
    await record(page, "11-audit-verified");
    const exported = await page.request.get(`${base}/audit/export?format=csv`);
    results.exportStatus = exported.status();
    results.exportHead = (await exported.text()).split("\n")[0];

    await visit(page, "/people", "12-people");

    // Install from the embedded registry through the review page.
    const reference = env("INSTALL_REFERENCE");
    await visit(page, "/install", "13-install");
    const tag = reference.slice(reference.lastIndexOf(":") + 1);
    const repository = reference.slice(reference.indexOf("/") + 1, reference.lastIndexOf(":"));
    const row = page.locator("tr", { has: page.locator(`th:text-is("${repository}")`) });
    await row.locator(`a:text-is("${tag}")`).click();
    await page.waitForURL(/\/install\/review/);
    await record(page, "14-install-review");
    await page.click("form[action='/install/review'] button[type=submit]");
    await page.waitForURL(/done=install/, { timeout: 120000 });
    results.installed = decodeURIComponent(new URL(page.url()).pathname.split("/")[2]);
    await record(page, "15-installed-worker");

    // The rule builder: the routing rule of docs/rules.md, built by hand, checked as it is
    // written, tried on a record, deployed; then two new leads, one it fires on.
    {
      await visit(page, "/rules", "20-rules");
      await page.goto(base + "/rules/new");
      await page.fill("input[name=name]", "console-routing");
      await page.fill("input[name=description]", "Built in the console");
      await page.fill("input[name='c0.field']", "employees");
      await page.selectOption("select[name='c0.op']", "greater-than");
      await page.fill("input[name='c0.value']", "500");
      await page.click("button[name=do][value=add-condition]");
      await page.waitForSelector("input[name='c1.field']");
      await page.fill("input[name='c1.field']", "owner-in-team");
      await page.fill("input[name='c1.value']", "emea");
      // Step 1: assign, round-robin.
      await page.selectOption("select[name='s0.action']", "assign");
      await page.waitForSelector("select[name='s0.strategy']");
      await page.fill("input[name='s0.id']", "owner");
      await page.selectOption("select[name='s0.strategy']", "round-robin");
      await page.fill("input[name='s0.to']", "ann, bob");
      // Step 2: a call task.
      await page.click("button[name=do][value=add-step]");
      await page.waitForSelector("select[name='s1.action']");
      await page.selectOption("select[name='s1.action']", "create");
      await page.waitForSelector("textarea[name='s1.fields']");
      await page.fill("input[name='s1.id']", "task");
      await page.fill("input[name='s1.object']", "task");
      await page.fill("textarea[name='s1.fields']", [
        "subject = Call {{lead.name}} ({{lead.company}})",
        "status = open",
        "due_date = +2d",
        "priority = high",
        "assignee = {{steps.owner.owner}}",
        "related_to = lead/{{lead.id}}",
      ].join("\n"));
      // Step 3: Slack the new owner, written with the merge-field picker.
      await page.click("button[name=do][value=add-step]");
      await page.waitForSelector("select[name='s2.channel']");
      await page.selectOption("select[name='s2.channel']", "slack");
      await page.fill("input[name='s2.to']", "{{steps.owner.owner}}");
      const message = page.locator("textarea[name='s2.message']");
      // A misspelt field is caught as it is typed, naming the step.
      await message.fill("New enterprise lead {{lead.nmae}}");
      await page.waitForFunction(() => /step 3 \(notify\).*nmae/.test(document.getElementById("rule-check").textContent), null, { timeout: 15000 });
      results.ruleLiveProblem = (await page.locator("#rule-check ul.problems").innerText()).trim();
      await record(page, "21-rule-builder-problem", { axe: false });
      await message.fill("New enterprise lead ");
      await message.press("End");
      await page.click("button[data-merge='{{lead.name}}']");
      await message.press("End");
      await message.type(" from ");
      await page.click("button[data-merge='{{lead.company}}']");
      await page.waitForFunction(() => /The rule checks/.test(document.getElementById("rule-check").textContent), null, { timeout: 15000 });
      results.ruleMessage = await message.inputValue();
      await record(page, "22-rule-builder");
      // Tried on a record, then deployed.
      await page.fill("input[name=sample]", env("SAMPLE_LEAD"));
      await page.click("button[name=do][value=try]");
      await page.waitForSelector("section.tried");
      results.ruleTried = (await page.locator("main > p.notice").innerText()).trim();
      results.ruleTriedActions = await page.$$eval("section.tried ol li code", (c) => c.map((x) => x.textContent));
      await record(page, "23-rule-tried");
      await page.fill("input[name=reason]", "EMEA enterprise routing, built in the console");
      await page.click("button[name=do][value=deploy]");
      await page.waitForURL(/\/rules\/console-routing$/);
      results.ruleDeployed = (await page.locator("main dl.facts").innerText()).includes("version 1");
      await record(page, "24-rule-deployed");
      // Two new leads: one the rule is for, one from NA.
      const auth = { authorization: `Bearer ${env("ADMIN_TOKEN")}` };
      for (const [id, owner] of [["L-CONSOLE-1", "bob"], ["L-CONSOLE-2", "cat"]]) {
        const made = await page.request.post(`${base}/v1/records/lead`, {
          headers: auth,
          data: { id, owner, fields: { name: `Lead ${id}`, company: "Console Corp", employees: 900, status: "open" } },
        });
        check(made.status() === 201, `creating ${id} answered ${made.status()}`);
      }
      results.ruleRuns = {};
      for (let i = 0; i < 120 && Object.keys(results.ruleRuns).length < 2; i++) {
        const answer = await page.request.get(`${base}/v1/executions?worker=console-routing&limit=100`, { headers: auth });
        const entries = (await answer.json()).executions || [];
        for (const e of entries) {
          if (e.record === "lead/L-CONSOLE-1" || e.record === "lead/L-CONSOLE-2") results.ruleRuns[e.record] = e;
        }
        await page.waitForTimeout(500);
      }
    }

    // The kill switch on a domain.
    await visit(page, "/kill", "16-kill-switch");
    await page.check("input[name=scope][value=domain]");
    await page.selectOption("select[name=domain]", env("KILL_DOMAIN"));
    await page.fill("input[name=reason]", "Console test: stopping a domain");
    await page.check("input[name=confirm]");
    await page.click("form[action='/kill'] button[type=submit]");
    await page.waitForSelector("[data-kill-report]");
    results.kill = await page.$$eval("[data-kill-report] .card .value", (v) => v.map((x) => Number(x.textContent)));
    results.killPaused = await page.$$eval("ul[data-paused] li a", (a) => a.map((x) => x.textContent));
    await record(page, "17-kill-report");

    // Dark, at a laptop's width.
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize({ width: 1366, height: 768 });
    await visit(page, "/", "18-dashboard-dark");
    await visit(page, "/approvals", "19-approvals-dark");

    // Signing out ends the session.
    await page.click("form[action='/logout'] button");
    await page.waitForURL(/\/login/);
    await page.goto(base + "/workers");
    results.afterSignOut = new URL(page.url()).pathname;
  }
} catch (e) {
  results.problems.push(`the browser run stopped: ${e.stack || e}`);
} finally {
  await browser.close();
  writeFileSync(`${artifacts}/results.json`, JSON.stringify(results, null, 2));
}
