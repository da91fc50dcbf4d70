// Answers streamed side by side (playground and arena): read newline-delimited JSON events,
// fill one pane per model, format the stats. Exposed as window.maPanes.
(function () {
  "use strict";

  // POST `body` as JSON to `url`; call onEvent(event) for each line of the streamed answer.
  // Resolves when the stream ends; rejects with an Error whose message is the server's.
  function stream(url, body, onEvent, signal) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: signal
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(
          function (data) { throw new Error(data.error || ("The studio answered " + response.status)); },
          function () { throw new Error("The studio answered " + response.status); }
        );
      }
      return readLines(response.body.getReader(), onEvent);
    });
  }

  function readLines(reader, onEvent) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (part) {
        buffer += decoder.decode(part.value || new Uint8Array(), { stream: !part.done });
        var lines = buffer.split("\n");
        buffer = lines.pop();
        lines.forEach(function (line) { if (line.trim()) onEvent(JSON.parse(line)); });
        if (part.done) {
          if (buffer.trim()) onEvent(JSON.parse(buffer));
          return;
        }
        return pump();
      });
    }
    return pump();
  }

  // The stats rows of a pane; the load row shows only when the request had to load the model.
  var STATS = [
    ["output_tokens", "Tokens"],
    ["load_s", "Load"],
    ["ttft_s", "Time to first token"],
    ["tokens_per_s", "Tokens/s"],
    ["cost_usd", "Cost"]
  ];

  // What each pane has seen of its stream: when its first piece of text came (performance.now()),
  // how many pieces, and how long its model took to load (null: no load in this request).
  var seen = new WeakMap();

  function state(pane) {
    if (!seen.has(pane)) seen.set(pane, { first: null, pieces: 0, load: null });
    return seen.get(pane);
  }

  function seconds(value) { return value == null ? "–" : value.toFixed(2) + " s"; }

  function usd(value) {
    return window.maUsd(value); // studio.js: the one money format
  }

  // Time to first token as the user waited for it, with the load it included, if any.
  function firstToken(value, load) {
    return load == null ? seconds(value) : seconds(value) + " (incl. " + seconds(load) + " loading)";
  }

  function formatStat(name, stats) {
    var value = stats[name];
    if (name === "output_tokens") return value + " out · " + stats.input_tokens + " in";
    if (name === "tokens_per_s") return value == null ? "–" : value.toFixed(1);
    return usd(value);
  }

  // Write one stat; a pane drawn by its page's template (the arena's) may lack the row.
  function setStat(pane, name, text) {
    var value = pane.querySelector('[data-stat="' + name + '"]');
    if (value) value.textContent = text;
  }

  function showRow(pane, name, shown) {
    var row = pane.querySelector('[data-row="' + name + '"]');
    if (row) row.hidden = !shown;
  }

  // A pane: heading, the answer as it streams, its stats. Returns the section element.
  function makePane(index, title) {
    var pane = document.createElement("section");
    pane.className = "pane waiting";
    pane.setAttribute("data-index", String(index));
    pane.setAttribute("aria-labelledby", "pane-title-" + index);
    var heading = document.createElement("h2");
    heading.id = "pane-title-" + index;
    heading.className = "pane-title";
    heading.textContent = title;
    var answer = document.createElement("pre");
    answer.className = "answer";
    answer.setAttribute("tabindex", "0");
    answer.setAttribute("role", "region"); // a name is not allowed on a plain pre
    answer.setAttribute("aria-label", "Answer of " + title);
    var stats = document.createElement("dl");
    stats.className = "stats";
    STATS.forEach(function (pair) {
      var row = document.createElement("div");
      row.setAttribute("data-row", pair[0]);
      row.hidden = pair[0] === "load_s";
      var term = document.createElement("dt");
      term.textContent = pair[1];
      var value = document.createElement("dd");
      value.setAttribute("data-stat", pair[0]);
      value.textContent = "…";
      row.appendChild(term);
      row.appendChild(value);
      stats.appendChild(row);
    });
    pane.appendChild(heading);
    pane.appendChild(answer);
    pane.appendChild(stats);
    return pane;
  }

  // Label a pane with its model's kinds (base, chat, code, vision…), under its heading.
  function labelKinds(pane, kinds) {
    if (!kinds || !kinds.length) return;
    var line = document.createElement("p");
    line.className = "pane-kinds";
    kinds.forEach(function (kind) {
      var badge = document.createElement("span");
      badge.className = "badge badge-kind";
      badge.textContent = kind;
      line.appendChild(badge);
      line.appendChild(document.createTextNode(" "));
    });
    pane.querySelector(".pane-title").after(line);
  }

  // The model is loading for this request, or (seconds given) has loaded in that time.
  function showLoad(pane, loadSeconds) {
    showRow(pane, "load_s", true);
    pane.classList.toggle("loading", loadSeconds == null);
    setStat(pane, "load_s", loadSeconds == null ? "loading…" : seconds(loadSeconds));
    if (loadSeconds != null) state(pane).load = loadSeconds;
  }

  // A piece of text: the answer grows and the live figures follow. Time to first token is
  // measured here, from the send (root's data-sent, performance.now() when the run was sent);
  // tokens/s counts the streamed pieces after the first, as the server's figure counts tokens.
  function addText(root, pane, text) {
    var s = state(pane);
    var now = performance.now();
    pane.querySelector(".answer").textContent += text;
    s.pieces += 1;
    if (s.first === null) {
      s.first = now;
      var sent = parseFloat(root.dataset.sent);
      if (!isNaN(sent)) setStat(pane, "ttft_s", firstToken((now - sent) / 1000, s.load));
    }
    setStat(pane, "output_tokens", s.pieces + " so far");
    var span = (now - s.first) / 1000;
    if (s.pieces > 1 && span > 0) setStat(pane, "tokens_per_s", "≈" + ((s.pieces - 1) / span).toFixed(1));
    pane.classList.remove("waiting");
    pane.classList.add("streaming");
  }

  // The answer's end: the server's counts, rate and cost; the time to first token the page
  // measured (or, without a send time, the server's plus the load); a flag when max tokens cut it.
  function finish(root, pane, event) {
    var s = state(pane);
    ["output_tokens", "tokens_per_s", "cost_usd"].forEach(function (name) {
      setStat(pane, name, formatStat(name, event));
    });
    var sent = parseFloat(root.dataset.sent);
    if (s.first === null || isNaN(sent)) {
      var served = event.ttft_s == null ? null : event.ttft_s + (event.load_s || 0);
      setStat(pane, "ttft_s", firstToken(served, event.load_s));
    }
    if (event.finish_reason === "length") {
      var note = document.createElement("p");
      note.className = "truncated";
      note.textContent = "Truncated at " + event.output_tokens + " tokens (max tokens).";
      pane.insertBefore(note, pane.querySelector(".stats"));
    }
    pane.classList.remove("streaming", "waiting", "loading");
    pane.classList.add("finished");
  }

  // Apply one streamed event to the panes (found by data-index inside `root`).
  function apply(root, event) {
    var pane = root.querySelector('.pane[data-index="' + event.index + '"]');
    if (!pane) return;
    if (event.type === "loading") {
      showLoad(pane, null);
    } else if (event.type === "loaded") {
      showLoad(pane, event.load_s);
    } else if (event.type === "delta") {
      addText(root, pane, event.text);
    } else if (event.type === "stats") {
      finish(root, pane, event);
    } else if (event.type === "error") {
      var note = document.createElement("p");
      note.className = "error";
      note.setAttribute("role", "alert");
      note.textContent = event.message;
      pane.appendChild(note);
      pane.classList.remove("streaming", "waiting", "loading");
      pane.classList.add("finished", "failed");
    }
  }

  function resetPane(pane) {
    seen.delete(pane);
    pane.querySelector(".answer").textContent = "";
    pane.querySelectorAll("[data-stat]").forEach(function (dd) { dd.textContent = "…"; });
    showRow(pane, "load_s", false);
    pane.querySelectorAll(".error, .truncated").forEach(function (p) { p.remove(); });
    pane.classList.remove("streaming", "finished", "failed", "loading");
    pane.classList.add("waiting");
  }

  // After a stream stopped early (an error, the Stop button): no pane is waiting or streaming.
  function settle(root) {
    root.querySelectorAll(".pane").forEach(function (pane) { pane.classList.remove("waiting", "streaming", "loading"); });
  }

  // The small form helpers every pane page (playground modes, arenas) needs alike.
  // Show `message` in the page's error box, or hide the box when it is "".
  function showError(box, message) {
    box.textContent = message;
    box.hidden = !message;
  }

  // The whole number in `form`'s field `name`, or null when it is empty (the server's default).
  function number(form, name) {
    var value = form.elements[name].value;
    return value === "" ? null : parseInt(value, 10);
  }

  // While a run streams: Run is disabled, Stop enabled, and the panes are marked busy.
  function busy(runButton, stopButton, panes, on) {
    runButton.disabled = on;
    stopButton.disabled = !on;
    panes.setAttribute("aria-busy", String(on));
  }

  // The text box a run was sent from (Ctrl+Enter in it), else the prompt: where focus stays.
  function sendingBox(form) {
    var active = document.activeElement;
    return active && active.tagName === "TEXTAREA" && active.form === form ? active : form.elements.prompt;
  }

  // Focus left nowhere (on the page, or on Run or Stop, disabled as the run starts or ends).
  function focusLost(buttons) {
    var active = document.activeElement;
    return !active || active === document.body || buttons.indexOf(active) >= 0;
  }

  // What the status line (a polite live region) says once the answers are in: the one
  // announcement of a run's end, with the answers max tokens cut short.
  function doneMessage(panes, started) {
    var text = "Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s.";
    var cut = panes.querySelectorAll(".truncated").length;
    if (cut) text += " " + cut + (cut === 1 ? " answer was" : " answers were") + " truncated at max tokens.";
    return text;
  }

  // After a run: each truncated answer offers to ask again with twice the max tokens (up to the
  // field's max), where the form has a max tokens field with a number in it.
  function offerMore(panes, form) {
    var field = form.elements.max_tokens;
    var current = field ? parseInt(field.value, 10) : NaN;
    if (isNaN(current)) return;
    var more = Math.min(parseInt(field.max || "8192", 10), current * 2);
    if (more <= current) return;
    panes.querySelectorAll(".truncated").forEach(function (note) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.textContent = "Ask again with max tokens " + more;
      button.addEventListener("click", function () { field.value = String(more); form.requestSubmit(); });
      note.appendChild(document.createTextNode(" "));
      note.appendChild(button);
    });
  }

  // A playground page's run, for the text and the image modes alike: the models picked in the
  // form's model lists, one pane each, the prompt streamed to all, Stop to abort. page: prefix
  // (its status, error, run and stop elements are PREFIX-status, -error, -run, -stop), form,
  // panes, api (where the run is POSTed), working(models) (the status while it streams),
  // body(models, prompt), makePane(index, id), apply(panes, event), and optionally
  // stopped(panes) (tidy the panes after a stream that ended early). A send while a run
  // streams (Ctrl+Enter) is ignored; focus stays in the text box it was sent from.
  function wireRun(page) {
    var form = page.form;
    var panes = page.panes;
    var byId = function (name) { return document.getElementById(page.prefix + "-" + name); };
    var status = byId("status");
    var errorBox = byId("error");
    var runButton = byId("run");
    var stopButton = byId("stop");
    var controller = null;

    function run(event) {
      event.preventDefault();
      if (controller) return;
      var started = performance.now();  // the send: time to first token counts from here
      var box = sendingBox(form);
      var models = [];
      form.querySelectorAll("select[name=model]").forEach(function (s) { if (s.value) models.push(s.value); });
      var prompt = form.elements.prompt.value;
      showError(errorBox, "");
      if (!models.length) { showError(errorBox, "Pick at least one model."); return; }
      if (!prompt.trim()) { showError(errorBox, "Write a prompt first."); form.elements.prompt.focus(); return; }
      panes.textContent = "";
      panes.className = "panes panes-" + models.length;
      panes.dataset.sent = String(started);
      models.forEach(function (id, i) { panes.appendChild(page.makePane(i, id)); });
      var body = page.body(models, prompt);
      controller = new AbortController();
      busy(runButton, stopButton, panes, true);
      box.focus();
      status.textContent = page.working(models);
      stream(page.api, body, function (e) { page.apply(panes, e); }, controller.signal).then(function () {
        status.textContent = doneMessage(panes, started);
        offerMore(panes, form);
      }, function (err) {
        if (page.stopped) page.stopped(panes);
        if (err.name === "AbortError") { status.textContent = "Stopped."; return; }
        status.textContent = "";
        showError(errorBox, err.message);
      }).then(function () {
        var lost = focusLost([runButton, stopButton]);
        busy(runButton, stopButton, panes, false);
        controller = null;
        if (lost) box.focus();
      });
    }

    form.addEventListener("submit", run);
    stopButton.addEventListener("click", function () { if (controller) controller.abort(); });
  }

  window.maPanes = {
    stream: stream, makePane: makePane, labelKinds: labelKinds, apply: apply, resetPane: resetPane,
    settle: settle, usd: usd, showError: showError, number: number, busy: busy, wireRun: wireRun
  };
})();
