// Small progressive enhancements of the server-rendered pages (they work without this file):
// select-all and the selection count of the stream, auto-submitting pickers, and the custom range fields.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function refreshSelection(root) {
    var form = (root || document).querySelector ? document.getElementById("bulk-form") : null;
    if (!form) return;
    var boxes = form.querySelectorAll("input.row-check");
    var checked = form.querySelectorAll("input.row-check:checked").length;
    var all = document.getElementById("select-all");
    if (all) {
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
    form.querySelectorAll("button.bulk, summary.bulk-summary").forEach(function (el) {
      if (el.tagName === "BUTTON") el.disabled = checked === 0;
      el.setAttribute("aria-disabled", checked === 0 ? "true" : "false");
    });
    var count = document.getElementById("selection-count");
    if (count) count.textContent = checked ? checked + " selected" : "Select issues to act on them";
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll("#bulk-form input.row-check").forEach(function (box) {
        box.checked = target.checked;
      });
      refreshSelection();
    } else if (target.classList && target.classList.contains("row-check")) {
      refreshSelection();
    } else if (target.id === "period") {
      var custom = document.getElementById("custom-range");
      if (target.value === "custom") {
        if (custom) custom.classList.remove("js-hidden");
        var first = custom && custom.querySelector("input");
        if (first) first.focus();
      } else if (target.form) {
        if (custom) custom.classList.add("js-hidden");
        target.form.requestSubmit();
      }
    } else if (target.classList && target.classList.contains("auto-submit") && target.form) {
      target.form.requestSubmit();
    }
  });

  // Close an open menu on Escape and when clicking elsewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("DOMContentLoaded", function () { refreshSelection(); });
  document.addEventListener("htmx:afterSettle", function () { refreshSelection(); });
})();
