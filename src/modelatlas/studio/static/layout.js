// modelatlas studio: the page layout every page shares, done once here instead of in each template.
// - Tables become stacked cards on a phone (studio.css, its "Layout" part): each cell gets its
//   column's name as data-label, which the stylesheet shows before the value.
// - A region that scrolls sideways (a wide table on a desktop, a long code line) can be reached and
//   scrolled with the keyboard: focusable, and named after what it holds.
// - A page with three sections or more gets an "On this page" list of links to them at the top
//   (issue 17 measured a run page 25,500 px tall on a phone).
(function () {
  "use strict";

  var TABLES = "table.data, .improve-section table";
  var SCROLLERS = ".table-wrap, pre";
  var MIN_SECTIONS = 3;

  function words(el) {
    return (el.textContent || "").replace(/\s+/g, " ").trim();
  }

  // The row whose cells name the columns: thead's last row, else a first row of th cells only.
  function headerRow(table) {
    if (table.tHead && table.tHead.rows.length) return table.tHead.rows[table.tHead.rows.length - 1];
    var first = table.rows[0];
    if (first && first.querySelector("th") && !first.querySelector("td")) return first;
    return null;
  }

  function columnNames(row) {
    var names = [];
    Array.prototype.forEach.call(row.cells, function (cell) {
      for (var i = 0; i < cell.colSpan; i++) names.push(words(cell));
    });
    return names;
  }

  // Native table semantics go when CSS shows the cells as blocks; the ARIA roles keep them, so
  // a screen reader still hears a table with its column headers.
  function keepSemantics(table, header) {
    table.setAttribute("role", "table");
    Array.prototype.forEach.call(table.querySelectorAll("thead, tbody, tfoot"), function (group) {
      group.setAttribute("role", "rowgroup");
    });
    Array.prototype.forEach.call(table.rows, function (row) {
      row.setAttribute("role", "row");
      Array.prototype.forEach.call(row.cells, function (cell) {
        var role = cell.tagName === "TD" ? "cell" : row === header ? "columnheader" : "rowheader";
        cell.setAttribute("role", role);
      });
    });
  }

  function labelCells(table) {
    var header = headerRow(table);
    if (!header) return;
    var names = columnNames(header);
    Array.prototype.forEach.call(table.rows, function (row) {
      if (row === header || row.parentNode === table.tHead) return;
      var column = 0;
      Array.prototype.forEach.call(row.cells, function (cell) {
        var name = names[column];
        if (name && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", name);
        column += cell.colSpan;
      });
    });
    keepSemantics(table, header);
    if (header.parentNode !== table.tHead) header.classList.add("cards-head");
    table.classList.add("cards");
  }

  // A page that scrolls a table sideways on purpose says so by making its wrapper focusable
  // (the model comparison): that table keeps its grid on a phone.
  function cardTables() {
    Array.prototype.forEach.call(document.querySelectorAll(TABLES), function (table) {
      var wrap = table.closest(".table-wrap");
      if (wrap && wrap.hasAttribute("tabindex")) return;
      labelCells(table);
      // Rows drawn later (a leaderboard redrawn after a vote, a job's progress) get labels too.
      var relabel = new MutationObserver(function () { labelCells(table); });
      relabel.observe(table, { childList: true, subtree: true });
    });
  }

  function headingBefore(el) {
    var found = null;
    Array.prototype.forEach.call(document.querySelectorAll("main h2, main h3"), function (h) {
      if (h.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) found = h;
    });
    return found;
  }

  // A scrolling region's name: its table's caption, its code sample's title, else the heading
  // of the part of the page it is in.
  function scrollerName(el) {
    var caption = el.querySelector("caption");
    if (caption && words(caption)) return words(caption);
    var sample = el.closest(".sample");
    var title = sample && sample.querySelector(".sample-head span");
    if (title && words(title)) return words(title);
    var heading = headingBefore(el);
    return heading ? words(heading) : el.tagName === "PRE" ? "Code" : "Table";
  }

  // Only a region that does scroll takes a tab stop; one that fits gives it back.
  function focusableScrollers() {
    Array.prototype.forEach.call(document.querySelectorAll(SCROLLERS), function (el) {
      var ours = el.hasAttribute("data-scroll-auto");
      if (el.hasAttribute("tabindex") && !ours) return; // the template made it focusable itself
      if (el.scrollWidth > el.clientWidth + 1) {
        el.setAttribute("tabindex", "0");
        el.setAttribute("role", "region");
        el.setAttribute("aria-label", scrollerName(el) + " (scrolls sideways)");
        el.setAttribute("data-scroll-auto", "");
      } else if (ours) {
        ["tabindex", "role", "aria-label", "data-scroll-auto"].forEach(function (name) {
          el.removeAttribute(name);
        });
      }
    });
  }

  function slug(text, taken) {
    var base = "s-" + (text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "section");
    var id = base;
    for (var n = 2; taken(id); n++) id = base + "-" + n;
    return id;
  }

  function sectionNav() {
    var main = document.getElementById("main");
    var headings = main ? main.querySelectorAll("h2") : [];
    if (headings.length < MIN_SECTIONS) return;
    var nav = document.createElement("nav");
    nav.className = "on-this-page";
    nav.setAttribute("aria-label", "On this page");
    var title = document.createElement("p");
    title.textContent = "On this page";
    title.setAttribute("aria-hidden", "true");
    var list = document.createElement("ul");
    Array.prototype.forEach.call(headings, function (h) {
      if (!h.id) h.id = slug(words(h), function (id) { return document.getElementById(id); });
      var link = document.createElement("a");
      link.href = "#" + h.id;
      link.textContent = words(h);
      var item = document.createElement("li");
      item.appendChild(link);
      list.appendChild(item);
    });
    nav.appendChild(title);
    nav.appendChild(list);
    var h1 = main.querySelector("h1");
    main.insertBefore(nav, h1 && h1.parentNode === main ? h1.nextSibling : main.firstChild);
  }

  var resizing = null;
  function onResize() {
    clearTimeout(resizing);
    resizing = setTimeout(focusableScrollers, 150);
  }

  document.addEventListener("DOMContentLoaded", function () {
    cardTables();
    sectionNav();
    focusableScrollers();
    window.addEventListener("resize", onResize);
    window.addEventListener("load", focusableScrollers); // fonts and images change the widths
  });
})();
