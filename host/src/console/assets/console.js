// The console's own script. Every page works without it; with it, the theme can be
// switched, dangerous forms ask for confirmation, filters apply as they change, the
// approvals inbox answers to the keyboard and new held actions arrive without reloading.
"use strict";

(function () {
  const root = document.documentElement;
  const saved = localStorage.getItem("roster-theme");
  if (saved === "light" || saved === "dark") root.dataset.theme = saved;

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    // Light or dark, remembered in this browser.
    for (const button of document.querySelectorAll("[data-theme-toggle]")) {
      button.addEventListener("click", function () {
        const dark = root.dataset.theme
          ? root.dataset.theme === "dark"
          : matchMedia("(prefers-color-scheme: dark)").matches;
        root.dataset.theme = dark ? "light" : "dark";
        localStorage.setItem("roster-theme", root.dataset.theme);
      });
    }

    // Forms that change a lot ask first.
    document.addEventListener("submit", function (event) {
      const form = event.target;
      const question = form.dataset && form.dataset.confirm;
      if (question && !window.confirm(question)) event.preventDefault();
    });

    // Filters apply as soon as a choice changes.
    for (const form of document.querySelectorAll("form[data-autosubmit]")) {
      for (const field of form.querySelectorAll("select")) {
        field.addEventListener("change", function () { form.requestSubmit(); });
      }
    }

    inbox();
    ruleBuilder();
  });

  // The rule builder: a choice that changes the form redraws it, a merge field goes where
  // you are typing, and the rule is checked as it is written.
  function ruleBuilder() {
    const form = document.querySelector("form[data-rule-builder]");
    if (!form) return;
    for (const field of form.querySelectorAll("select[data-refresh]")) {
      field.addEventListener("change", function () { form.requestSubmit(); });
    }
    let target = null;
    form.addEventListener("focusin", function (event) {
      if (event.target.matches("input:not([type]), input[type=text], textarea")) target = event.target;
    });
    for (const button of form.querySelectorAll("[data-merge]")) {
      button.addEventListener("click", function () {
        if (!target) return;
        const text = button.dataset.merge;
        const at = target.selectionStart ?? target.value.length;
        const end = target.selectionEnd ?? at;
        target.value = target.value.slice(0, at) + text + target.value.slice(end);
        target.focus();
        target.setSelectionRange(at + text.length, at + text.length);
        target.dispatchEvent(new Event("input", { bubbles: true }));
      });
    }
    const panel = document.getElementById("rule-check");
    let timer = null;
    let sent = 0;
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        const mine = ++sent;
        fetch("/rules/check", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(new FormData(form)),
          credentials: "same-origin",
        })
          .then(function (answer) { return answer.ok ? answer.text() : ""; })
          .then(function (html) {
            if (html && mine === sent && panel) {
              panel.innerHTML = html;
              panel.dataset.checked = String(mine);
            }
          });
      }, 400);
    });
  }

  // The approvals inbox: j / k move, a approves, e edits, r rejects, ? shows the keys.
  function inbox() {
    const list = document.getElementById("held-list");
    if (!list) return;
    let current = null;

    function cards() { return Array.from(list.querySelectorAll(".held")); }

    function select(card) {
      if (current) current.removeAttribute("aria-current");
      current = card;
      if (card) {
        card.setAttribute("aria-current", "true");
        card.scrollIntoView({ block: "nearest" });
        const heading = card.querySelector("h2 a");
        if (heading) heading.focus({ preventScroll: true });
      }
    }

    function move(step) {
      const all = cards();
      if (all.length === 0) return;
      const at = current ? all.indexOf(current) : -1;
      select(all[Math.max(0, Math.min(all.length - 1, at + step))]);
    }

    list.addEventListener("focusin", function (event) {
      const card = event.target.closest(".held");
      if (card && card !== current) {
        if (current) current.removeAttribute("aria-current");
        current = card;
        card.setAttribute("aria-current", "true");
      }
    });

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const tag = (event.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "textarea" || tag === "select") {
        if (event.key === "Escape") event.target.blur();
        return;
      }
      const help = document.getElementById("shortcuts");
      switch (event.key) {
        case "j": move(1); break;
        case "k": move(-1); break;
        case "a": {
          const button = current && current.querySelector("button[data-verdict='approve']");
          if (button) button.click();
          break;
        }
        case "e": {
          const edit = current && current.querySelector("details.edit");
          if (edit) {
            edit.open = true;
            const field = edit.querySelector("input, textarea");
            if (field) field.focus();
          }
          break;
        }
        case "r": {
          const reason = current && current.querySelector("form.reject input[name='reason']");
          if (reason) reason.focus();
          break;
        }
        case "?": if (help) help.hidden = !help.hidden; break;
        default: return;
      }
      event.preventDefault();
    });

    const live = document.querySelector("[data-live]");
    if (!live || !window.EventSource) return;
    const source = new EventSource(live.dataset.live);
    const count = document.querySelector("[data-held-count]");

    function recount() {
      if (count) count.textContent = String(cards().length);
      const empty = document.getElementById("held-empty");
      if (empty) empty.hidden = cards().length > 0;
    }

    source.addEventListener("held", function (event) {
      const id = event.data;
      if (document.getElementById("held-" + id)) return;
      fetch("/approvals/" + encodeURIComponent(id) + "/card", { credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.text() : ""; })
        .then(function (html) {
          if (!html || document.getElementById("held-" + id)) return;
          // The list runs longest waiting first: a new arrival goes last, so nothing
          // moves under the reviewer's cursor.
          list.insertAdjacentHTML("beforeend", html);
          const card = document.getElementById("held-" + id);
          if (card) card.classList.add("fresh");
          recount();
        });
    });
    source.addEventListener("gone", function (event) {
      const card = document.getElementById("held-" + event.data);
      if (card) {
        if (card === current) current = null;
        card.remove();
        recount();
      }
    });
    live.hidden = false;
  }
})();
