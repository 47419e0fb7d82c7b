// qadmin dashboard: small progressive enhancements. Every page works without this file.
// Loaded in <head> without `defer`, so that the theme is set on <html> before the page is
// painted; everything else waits for DOMContentLoaded. Three parts: the theme, the lists (selection,
// live refresh), the console (the phone menu and the keyboard shortcuts).
"use strict";

// --- the theme ----------------------------------------------------------------------------------
// With no choice saved, the page follows the system's prefers-color-scheme, live. The toggle saves
// a choice in localStorage; choosing what the system says again forgets it, so the page follows
// the system again.

(function () {
  var KEY = "qadmin-theme";
  var root = document.documentElement;
  var query = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function saved() {
    try {
      var value = window.localStorage.getItem(KEY);
      return value === "dark" || value === "light" ? value : null;
    } catch (e) {
      return null;  // storage refused (private mode, policy): follow the system
    }
  }
  function system() { return query && query.matches ? "dark" : "light"; }
  var pinned = null;  // the choice of this page when the browser refuses to store it
  function apply() {
    var theme = saved() || pinned || system();
    root.setAttribute("data-theme", theme);
    // the button says whether the dark theme is on (it exists once the page is parsed)
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
    });
  }

  function toggle() {
    var next = root.getAttribute("data-theme") === "dark" ? "light" : "dark";
    try {
      if (next === system()) { window.localStorage.removeItem(KEY); } else { window.localStorage.setItem(KEY, next); }
      pinned = null;
    } catch (e) {
      pinned = next;  // not remembered, still switched
    }
    apply();
  }

  apply();
  document.addEventListener("DOMContentLoaded", apply);
  if (query && query.addEventListener) { query.addEventListener("change", apply); }
  // another tab switched: follow it
  window.addEventListener("storage", function (event) { if (event.key === KEY) { apply(); } });
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.closest && target.closest("[data-theme-toggle]")) { toggle(); }
  });
  window.qadminToggleTheme = toggle;
})();


// --- the lists: selection, live refresh -----------------------------------------------------------
(function () {
  document.documentElement.classList.add("js");

  var LIVE_KEY = "qadmin-live";

  // The backend switcher submits as soon as a backend is chosen.
  function autosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  // Checkboxes of a job table: "select all", a live count, and the "… selected" buttons
  // enabled only when something is selected. Listeners sit on the form and the boxes are looked
  // up on each change, so rows swapped in by a live refresh need nothing of their own.
  function selection(root) {
    root.querySelectorAll("form").forEach(function (form) {
      if (!form.querySelector('input[type="checkbox"][name="id"]')) { return; }
      function boxes() { return form.querySelectorAll('input[type="checkbox"][name="id"]'); }
      function update() {
        var all = form.querySelector("input[data-select-all]");
        var counter = form.querySelector("[data-selected-count]");
        var list = boxes();
        var n = 0;
        list.forEach(function (b) { if (b.checked) { n += 1; } });
        if (counter) { counter.textContent = n + " selected"; }
        form.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
        if (all) {
          all.checked = n > 0 && n === list.length;
          all.indeterminate = n > 0 && n < list.length;
        }
      }
      form.addEventListener("change", function (event) {
        var target = event.target;
        if (target.matches("input[data-select-all]")) {
          boxes().forEach(function (b) { b.checked = target.checked; });
        }
        update();
      });
      form.qadminUpdate = update;
      update();
    });
  }

  function livePaused() {
    try { return window.localStorage.getItem(LIVE_KEY) === "paused"; } catch (e) { return false; }
  }

  // The "live" boxes: one choice for every page, remembered, so that a paused console stays
  // paused from page to page.
  function liveToggles(root) {
    root.querySelectorAll("input[data-live-toggle]").forEach(function (toggle) {
      toggle.checked = !livePaused();
      toggle.addEventListener("change", function () {
        try {
          if (toggle.checked) { window.localStorage.removeItem(LIVE_KEY); } else { window.localStorage.setItem(LIVE_KEY, "paused"); }
        } catch (e) { /* not remembered */ }
        document.querySelectorAll("input[data-live-toggle]").forEach(function (other) { other.checked = toggle.checked; });
      });
    });
  }

  function liveOn() {
    var toggle = document.querySelector("input[data-live-toggle]");
    return !document.hidden && !(toggle && !toggle.checked);
  }

  // What a swap must not lose: the ticked boxes, the keyboard's row, the page's and each
  // scrolling container's scroll position.
  function keep(box) {
    var checked = {};
    box.querySelectorAll('input[type="checkbox"][name="id"]').forEach(function (b) { if (b.checked) { checked[b.value] = true; } });
    var cursor = box.querySelector("tr.is-cursor a[href]");
    var scrolled = [];
    box.querySelectorAll(".table-card, .card > table, .tabs").forEach(function (el) { scrolled.push(el.scrollLeft); });
    return { checked: checked, cursor: cursor && cursor.getAttribute("href"), scrolled: scrolled, x: window.scrollX, y: window.scrollY };
  }

  function restore(box, kept) {
    box.querySelectorAll('input[type="checkbox"][name="id"]').forEach(function (b) { if (kept.checked[b.value]) { b.checked = true; } });
    if (kept.cursor) {
      box.querySelectorAll("tbody tr").forEach(function (row) {
        var link = row.querySelector("a[href]");
        if (link && link.getAttribute("href") === kept.cursor) { row.classList.add("is-cursor"); }
      });
    }
    box.querySelectorAll(".table-card, .card > table, .tabs").forEach(function (el, i) {
      if (kept.scrolled[i]) { el.scrollLeft = kept.scrolled[i]; }
    });
    window.scrollTo(kept.x, kept.y);
  }

  function swap(box, html) {
    var kept = keep(box);
    // server-rendered and escaped by Jinja, like the page itself
    box.innerHTML = html;
    restore(box, kept);
    selection(box);
    box.dispatchEvent(new CustomEvent("qadmin:refreshed", { bubbles: true }));
  }

  function poll(url, seconds, apply) {
    var busy = false;
    var timer = window.setInterval(function () {
      if (busy || !liveOn()) { return; }
      busy = true;
      fetch(url(), {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        redirect: "manual"
      }).then(function (response) {
        if (response.type === "opaqueredirect" || response.status === 401) {
          window.clearInterval(timer);  // logged out: stop polling, the next click logs in
          return null;
        }
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html !== null && html !== undefined) { apply(html); }
      }).catch(function () { /* the server is restarting: try again next tick */ })
        .finally(function () { busy = false; });
    }, seconds * 1000);
  }

  // Live refresh of a partial: a [data-refresh-url] element is replaced by a fresh server
  // rendering every data-refresh-seconds while the tab is visible and live is on.
  function live(root) {
    root.querySelectorAll("[data-refresh-url]").forEach(function (box) {
      var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10);
      if (!seconds || seconds < 1) { return; }
      poll(function () { return box.getAttribute("data-refresh-url"); }, seconds, function (html) { swap(box, html); });
    });
  }

  // Live lists: the page's own address fetched again, and each [data-live-part] swapped for its
  // namesake in the answer; the filter form, and whatever the operator is typing, stay as they are.
  function liveParts(root) {
    var parts = root.querySelectorAll("[data-live-part]");
    var toggle = root.querySelector("input[data-live-toggle][data-live-seconds]");
    if (!parts.length || !toggle) { return; }
    var seconds = parseInt(toggle.getAttribute("data-live-seconds"), 10);
    if (!seconds || seconds < 1) { return; }
    poll(function () { return window.location.href; }, seconds, function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live-part]").forEach(function (part) {
        var name = part.getAttribute("data-live-part");
        var found = fresh.querySelector('[data-live-part="' + name + '"]');
        if (found) { swap(part, found.innerHTML); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    autosubmit(document);
    selection(document);
    liveToggles(document);
    live(document);
    liveParts(document);
  });
})();


// --- the console: the phone menu, the keyboard shortcuts (the TUI's keys, "?" lists them) ---------
// Every action key only clicks a button the page already shows, so it goes through the same
// confirmation page as a click; nothing here changes anything by itself.
(function () {
  // --- the collapsing menu of narrow screens ------------------------------------------------
  function menu() {
    var button = document.querySelector("[data-nav-toggle]");
    if (!button) { return; }
    var bar = button.closest(".topbar");
    button.addEventListener("click", function () {
      var open = bar.classList.toggle("nav-open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // --- the row cursor of a list (j/k, arrows) -----------------------------------------------
  function listRows() {
    // the page's list (a table in its own card); the overview's small tables are not lists
    var table = document.querySelector("main .table-card table");
    return table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr")) : [];
  }

  function cursorRow() { return document.querySelector("main tbody tr.is-cursor"); }

  function moveCursor(step) {
    var rows = listRows();
    if (!rows.length) { return false; }
    var current = cursorRow();
    var index = current ? rows.indexOf(current) : -1;
    var next = index < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, index + step));
    if (current) { current.classList.remove("is-cursor"); }
    rows[next].classList.add("is-cursor");
    rows[next].scrollIntoView({ block: "nearest" });
    return true;
  }

  function openRow() {
    var row = cursorRow();
    var link = row && row.querySelector("a[href]");
    if (!link) { return false; }
    link.click();
    return true;
  }

  function toggleRow() {
    var row = cursorRow();
    var box = row && row.querySelector('input[type="checkbox"][name="id"]');
    if (!box) { return false; }
    box.click();  // a click, so that the form's count and buttons follow
    return true;
  }

  // r, d, u: the ticked jobs' "… selected" button; else the cursor row's own button (an error
  // group) or the row ticked alone; else the page's one button for that verb (a job's page)
  function act(verb) {
    var bulk = document.querySelector('button[value="' + verb + ':selected"]');
    if (bulk && bulk.form) {
      var ticked = bulk.form.querySelectorAll('input[name="id"]:checked').length;
      var row = cursorRow();
      var box = row && row.querySelector('input[type="checkbox"][name="id"]');
      if (!ticked && box) { box.click(); ticked = 1; }
      if (ticked) { bulk.disabled = false; bulk.click(); return true; }
    }
    var rowButton = cursorRow() && cursorRow().querySelector(
      "button.btn-" + verb + ", button.btn-" + verb + "-outline, button[data-verb=\"" + verb + "\"]");
    if (rowButton) { rowButton.click(); return true; }
    var buttons = document.querySelectorAll("main button.btn-" + verb);
    if (buttons.length === 1) { buttons[0].click(); return true; }
    return false;
  }

  function focusFilter() {
    // the text search where there is one (the TUI's "/"), else the first field of the filters
    var field = document.querySelector('form.filters input[name="search"]') ||
      document.querySelector('form.filters input[type="text"], form.filters input[type="search"], form.filters select');
    if (!field) { return false; }
    field.focus();
    if (field.select) { field.select(); }
    return true;
  }

  function clickLink(selector) {
    var link = document.querySelector(selector);
    if (!link) { return false; }
    link.click();
    return true;
  }

  function help() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog || !dialog.showModal) { return false; }
    if (dialog.open) { dialog.close(); } else { dialog.showModal(); }
    return true;
  }

  function toggleLive() {
    var toggle = document.querySelector("input[data-live-toggle]");
    if (!toggle) { return false; }
    toggle.click();
    return true;
  }

  function typing(target) {
    if (!target || !target.closest) { return false; }
    return !!target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]');
  }

  var KEYS = {
    "/": focusFilter,
    "j": function () { return moveCursor(1); },
    "k": function () { return moveCursor(-1); },
    // the arrows scroll the page until j or k has put the cursor on a row
    "ArrowDown": function () { return !!cursorRow() && moveCursor(1); },
    "ArrowUp": function () { return !!cursorRow() && moveCursor(-1); },
    "Enter": openRow,
    " ": toggleRow,
    "r": function () { return act("retry"); },
    "d": function () { return act("delete") || act("disable"); },  // a schedule is disabled, as in the TUI
    "e": function () { return act("enable"); },
    "u": function () { return act("unlock"); },
    "g": function () { return act("run_now"); },
    "K": function () { return act("kill"); },
    "C": function () { return act("cancel"); },
    "E": function () { return clickLink("main [data-edit]"); },
    // on a confirmation page, as the TUI's: y applies what it shows, n cancels
    "y": function () { return clickLink("[data-confirm-button]"); },
    "n": function () {
      if (document.querySelector("[data-confirm-button]")) { return clickLink('form[action$="/cancel"] button'); }
      return clickLink("[data-new-job]");
    },
    "[": function () { return clickLink('.pager a[rel="prev"]'); },
    "]": function () { return clickLink('.pager a[rel="next"]'); },
    "l": toggleLive,
    "t": function () { if (window.qadminToggleTheme) { window.qadminToggleTheme(); return true; } return false; },
    "?": help
  };

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open && event.key !== "?") { return; }  // the dialog has its own Esc
    if (event.key === "Escape") {
      var row = cursorRow();
      if (row) { row.classList.remove("is-cursor"); }
      return;
    }
    // Enter and Space on a focused link or button keep their own meaning
    if ((event.key === "Enter" || event.key === " ") && event.target.closest && event.target.closest("a, button, summary")) { return; }
    var handled = false;
    if (/^[1-8]$/.test(event.key)) {
      handled = clickLink('.mainnav a[data-key="' + event.key + '"]');
    } else if (Object.prototype.hasOwnProperty.call(KEYS, event.key)) {
      handled = KEYS[event.key]();
    }
    if (handled) { event.preventDefault(); }
  }

  // on a narrow screen the state tabs scroll sideways: show the current one
  function currentTab() {
    var tab = document.querySelector('.tabs a[aria-current="page"]');
    var tabs = tab && tab.parentElement;
    if (tabs && tabs.scrollWidth > tabs.clientWidth) {
      var offset = tab.getBoundingClientRect().left - tabs.getBoundingClientRect().left;
      tabs.scrollLeft += offset - (tabs.clientWidth - tab.offsetWidth) / 2;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    menu();
    currentTab();
    document.addEventListener("keydown", onKey);
  });
})();
