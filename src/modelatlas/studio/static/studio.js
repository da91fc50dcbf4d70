// modelatlas studio: the little JavaScript the pages need. No framework, no network but this server.
(function () {
  "use strict";

  // Money as modelatlas.formats.usd writes it: "$0", "$1,234.56", and below a dollar two
  // significant digits past the zeros ("$0.042", "$0.0000083"); missing: an en dash.
  window.maUsd = function (value) {
    if (value == null || isNaN(value)) return "\u2013";
    if (value === 0) return "$0";
    var sign = value < 0 ? "-" : "", size = Math.abs(value);
    if (size >= 1) {
      return sign + "$" + size.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    }
    var decimals = Math.max(2, 1 - Math.floor(Math.log10(size)));
    var parts = size.toFixed(decimals).replace(/0+$/, "").split(".");
    return sign + "$" + parts[0] + "." + (parts[1] || "").padEnd(2, "0");
  };

  var COMPARE_KEY = "modelatlas.compare";
  var COMPARE_MAX = 6; // as /compare holds (compare_models.MAX_MODELS)

  function navToggle() {
    var button = document.querySelector(".nav-toggle");
    var nav = document.getElementById("nav");
    if (!button || !nav) return;
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") === "true";
      button.setAttribute("aria-expanded", String(!open));
      nav.classList.toggle("open", !open);
    });
  }

  function copyText(text, done) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    done(ok);
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (!source) return;
        copyText(source.textContent, function (ok) {
          button.textContent = ok ? "Copied" : "Select and copy";
          setTimeout(function () { button.textContent = "Copy"; }, 2000);
        });
      });
    });
  }

  function compareList() {
    try {
      var list = JSON.parse(localStorage.getItem(COMPARE_KEY) || "[]");
      return Array.isArray(list) ? list : [];
    } catch (e) {
      return [];
    }
  }

  function showCompare() {
    var list = compareList();
    document.querySelectorAll("[data-compare-link]").forEach(function (link) {
      link.href = "/compare?" + list.map(function (id) { return "m=" + encodeURIComponent(id); }).join("&");
      link.hidden = list.length === 0;
    });
    document.querySelectorAll("[data-compare-count]").forEach(function (span) {
      span.textContent = String(list.length);
    });
    document.querySelectorAll("[data-compare-noun]").forEach(function (span) {
      span.textContent = list.length === 1 ? "model" : "models";
    });
  }

  // The compare page's models become the list, so "Add to comparison" adds to what was last seen.
  function keepShownComparison() {
    var shown = document.querySelector("[data-compare-current]");
    if (!shown) return;
    try {
      var ids = JSON.parse(shown.getAttribute("data-compare-current"));
      if (Array.isArray(ids)) localStorage.setItem(COMPARE_KEY, JSON.stringify(ids.slice(-COMPARE_MAX)));
    } catch (e) {
      return;
    }
  }

  function compareButtons() {
    document.querySelectorAll("[data-compare-add]").forEach(function (button) {
      button.addEventListener("click", function () {
        var id = button.getAttribute("data-compare-add");
        var list = compareList().filter(function (x) { return x !== id; });
        list.push(id);
        list = list.slice(-COMPARE_MAX);
        localStorage.setItem(COMPARE_KEY, JSON.stringify(list));
        var status = document.querySelector("[data-compare-status]");
        if (status) status.textContent = "In the comparison: " + list.join(", ");
        showCompare();
      });
    });
    keepShownComparison();
    showCompare();
  }

  function charts() {
    if (!window.Plotly) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var data = document.getElementById(el.getAttribute("data-chart"));
      if (!data) return;
      var figure = JSON.parse(data.textContent);
      var layout = Object.assign({ autosize: true }, figure.layout || {});
      // Sideways bars for many entries are taller than the stylesheet's box: the box grows to fit.
      if (layout.height) el.style.height = layout.height + "px";
      // On a phone the mode bar would cover the chart: none there, on hover elsewhere.
      var bar = window.matchMedia("(max-width: 700px)").matches ? false : "hover";
      window.Plotly.newPlot(el, figure.data, layout, { displaylogo: false, responsive: true, displayModeBar: bar });
    });
  }

  // A form with data-confirm asks first (revoking a key cannot be undone).
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  // Ctrl+Enter (Cmd+Enter on a Mac) in a text box sends its form, as in chat apps.
  function ctrlEnter() {
    document.querySelectorAll("form textarea").forEach(function (area) {
      area.addEventListener("keydown", function (event) {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && area.form) {
          event.preventDefault();
          area.form.requestSubmit();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    navToggle();
    confirmForms();
    ctrlEnter();
    copyButtons();
    compareButtons();
    charts();
  });
})();
