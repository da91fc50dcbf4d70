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

  var STATS = [
    ["output_tokens", "Tokens"],
    ["ttft_s", "Time to first token"],
    ["tokens_per_s", "Tokens/s"],
    ["cost_usd", "Cost"]
  ];

  function seconds(value) { return value == null ? "–" : value.toFixed(2) + " s"; }

  function usd(value) {
    if (value == null) return "–";
    if (value === 0) return "$0";
    return value < 0.01 ? "$" + value.toPrecision(2) : "$" + value.toFixed(4);
  }

  function formatStat(name, stats) {
    var value = stats[name];
    if (name === "output_tokens") return value + " out · " + stats.input_tokens + " in";
    if (name === "ttft_s") return seconds(value);
    if (name === "tokens_per_s") return value == null ? "–" : value.toFixed(1);
    return usd(value);
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
    answer.setAttribute("aria-label", "Answer of " + title);
    var stats = document.createElement("dl");
    stats.className = "stats";
    STATS.forEach(function (pair) {
      var term = document.createElement("dt");
      term.textContent = pair[1];
      var value = document.createElement("dd");
      value.setAttribute("data-stat", pair[0]);
      value.textContent = "…";
      stats.appendChild(term);
      stats.appendChild(value);
    });
    pane.appendChild(heading);
    pane.appendChild(answer);
    pane.appendChild(stats);
    return pane;
  }

  // Apply one streamed event to the panes (found by data-index inside `root`).
  function apply(root, event) {
    var pane = root.querySelector('.pane[data-index="' + event.index + '"]');
    if (!pane) return;
    if (event.type === "delta") {
      pane.querySelector(".answer").textContent += event.text;
      pane.classList.remove("waiting");
      pane.classList.add("streaming");
    } else if (event.type === "stats") {
      STATS.forEach(function (pair) {
        pane.querySelector('[data-stat="' + pair[0] + '"]').textContent = formatStat(pair[0], event);
      });
      pane.classList.remove("streaming", "waiting");
      pane.classList.add("finished");
    } else if (event.type === "error") {
      var note = document.createElement("p");
      note.className = "error";
      note.setAttribute("role", "alert");
      note.textContent = event.message;
      pane.appendChild(note);
      pane.classList.remove("streaming", "waiting");
      pane.classList.add("finished", "failed");
    }
  }

  function resetPane(pane) {
    pane.querySelector(".answer").textContent = "";
    pane.querySelectorAll("[data-stat]").forEach(function (dd) { dd.textContent = "…"; });
    pane.querySelectorAll(".error").forEach(function (p) { p.remove(); });
    pane.classList.remove("streaming", "finished", "failed");
    pane.classList.add("waiting");
  }

  // After a stream stopped early (an error, the Stop button): no pane is waiting or streaming.
  function settle(root) {
    root.querySelectorAll(".pane").forEach(function (pane) { pane.classList.remove("waiting", "streaming"); });
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

  // A playground page's run, for the text and the image modes alike: the models picked in the
  // form's model lists, one pane each, the prompt streamed to all, Stop to abort. page: prefix
  // (its status, error, run and stop elements are PREFIX-status, -error, -run, -stop), form,
  // panes, api (where the run is POSTed), working(models) (the status while it streams),
  // body(models, prompt), makePane(index, id), apply(panes, event), and optionally
  // stopped(panes) (tidy the panes after a stream that ended early).
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
      var models = [];
      form.querySelectorAll("select[name=model]").forEach(function (s) { if (s.value) models.push(s.value); });
      var prompt = form.elements.prompt.value;
      showError(errorBox, "");
      if (!models.length) { showError(errorBox, "Pick at least one model."); return; }
      if (!prompt.trim()) { showError(errorBox, "Write a prompt first."); form.elements.prompt.focus(); return; }
      panes.textContent = "";
      panes.className = "panes panes-" + models.length;
      models.forEach(function (id, i) { panes.appendChild(page.makePane(i, id)); });
      var body = page.body(models, prompt);
      var started = performance.now();
      controller = new AbortController();
      busy(runButton, stopButton, panes, true);
      status.textContent = page.working(models);
      stream(page.api, body, function (e) { page.apply(panes, e); }, controller.signal).then(function () {
        status.textContent = "Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s.";
      }, function (err) {
        if (page.stopped) page.stopped(panes);
        if (err.name === "AbortError") { status.textContent = "Stopped."; return; }
        status.textContent = "";
        showError(errorBox, err.message);
      }).then(function () { busy(runButton, stopButton, panes, false); controller = null; });
    }

    form.addEventListener("submit", run);
    stopButton.addEventListener("click", function () { if (controller) controller.abort(); });
  }

  window.maPanes = {
    stream: stream, makePane: makePane, apply: apply, resetPane: resetPane, settle: settle,
    usd: usd, showError: showError, number: number, busy: busy, wireRun: wireRun
  };
})();
