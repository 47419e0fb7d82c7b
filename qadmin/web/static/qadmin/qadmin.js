// qadmin dashboard: small progressive enhancements. Every page works without this file.
"use strict";

(function () {
  document.documentElement.classList.add("js");

  // The backend switcher submits as soon as a backend is chosen.
  function autosubmit(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  // Checkboxes of a job table: "select all", a live count, and the "… selected" buttons
  // enabled only when something is selected.
  function selection(root) {
    root.querySelectorAll("form").forEach(function (form) {
      var all = form.querySelector("input[data-select-all]");
      var boxes = form.querySelectorAll('input[type="checkbox"][name="id"]');
      if (!boxes.length) { return; }
      var counter = form.querySelector("[data-selected-count]");
      var buttons = form.querySelectorAll("[data-needs-selection]");
      function update() {
        var n = 0;
        boxes.forEach(function (b) { if (b.checked) { n += 1; } });
        if (counter) { counter.textContent = n + " selected"; }
        buttons.forEach(function (b) { b.disabled = n === 0; });
        if (all) {
          all.checked = n === boxes.length;
          all.indeterminate = n > 0 && n < boxes.length;
        }
      }
      if (all) {
        all.addEventListener("change", function () {
          boxes.forEach(function (b) { b.checked = all.checked; });
          update();
        });
      }
      boxes.forEach(function (b) { b.addEventListener("change", update); });
      update();
    });
  }

  // Live refresh: a [data-refresh-url] element is replaced by a fresh server rendering every
  // data-refresh-seconds while the tab is visible and its "live" box is ticked.
  function live(root) {
    root.querySelectorAll("[data-refresh-url]").forEach(function (box) {
      var seconds = parseInt(box.getAttribute("data-refresh-seconds"), 10);
      if (!seconds || seconds < 1) { return; }
      var toggle = document.querySelector("input[data-live-toggle]");
      var busy = false;
      var timer = window.setInterval(function () {
        if (busy || document.hidden || (toggle && !toggle.checked)) { return; }
        busy = true;
        fetch(box.getAttribute("data-refresh-url"), {
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
          if (html !== null && html !== undefined) {
            // server-rendered and escaped by Jinja, like the page itself
            box.innerHTML = html;
            selection(box);
          }
        }).catch(function () { /* the server is restarting: try again next tick */ })
          .finally(function () { busy = false; });
      }, seconds * 1000);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    autosubmit(document);
    selection(document);
    live(document);
  });
})();
