// One arena battle, for the text and the image arenas alike: start it, stream both sides into their
// panes, take the vote, reveal the names and redraw the leaderboard. The two pages differ only in
// what they send and how a pane shows its side, so those come in `page`; the rest lives here once.
// Exposed as window.maBattle.wire(page); needs window.maPanes and window.maBoard.
(function () {
  "use strict";

  var WORDS = { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both are bad" };

  // page: prefix (element ids are PREFIX-form, -panes, -status, -error, -vote, -result, -start),
  // api (the battle is POSTed to API/battle, the vote to API/vote), working and ready (the status
  // while the sides stream and once both are in), body(form), apply(panes, event), resetPane(pane),
  // and optionally unjudgeable(panes) (why this battle cannot be voted on, or "") and
  // stopped(panes) (tidy the panes after a stream that failed).
  function wire(page) {
    var byId = function (name) { return document.getElementById(page.prefix + "-" + name); };
    var form = byId("form");
    var panes = byId("panes");
    var status = byId("status");
    var errorBox = byId("error");
    var voteBox = byId("vote");
    var result = byId("result");
    var startButton = byId("start");
    var battle = null;

    function showError(message) { window.maPanes.showError(errorBox, message); }

    function reset() {
      panes.querySelectorAll(".pane").forEach(page.resetPane);
      panes.querySelectorAll("[data-reveal]").forEach(function (span) { span.textContent = ""; });
      voteBox.disabled = true;
      result.textContent = "";
      showError("");
      battle = null;
    }

    function start(event) {
      event.preventDefault();
      var prompt = form.elements.prompt.value;
      if (!prompt.trim()) { showError("Write a prompt first."); form.elements.prompt.focus(); return; }
      reset();
      startButton.disabled = true;
      status.textContent = page.working;
      window.maPanes.stream(page.api + "/battle", page.body(form), function (e) {
        if (e.type === "start") battle = e.battle;
        else page.apply(panes, e);
      }).then(function () {
        var why = page.unjudgeable ? page.unjudgeable(panes) : "";
        if (why) { status.textContent = why; return; }
        status.textContent = page.ready;
        voteBox.disabled = false;
        voteBox.querySelector("button").focus();
      }, function (err) {
        if (page.stopped) page.stopped(panes);
        status.textContent = "";
        showError(err.message);
      }).then(function () { startButton.disabled = false; });
    }

    function vote(winner) {
      if (!battle) return;
      voteBox.disabled = true;
      fetch(page.api + "/vote", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ battle: battle, winner: winner })
      }).then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || "The vote was not stored.");
          return data;
        });
      }).then(function (data) {
        battle = null;
        reveal(data);
        window.maBoard.draw(data.leaderboard);
      }, function (err) {
        voteBox.disabled = false;
        showError(err.message);
      });
    }

    function reveal(data) {
      [data.model_a, data.model_b].forEach(function (name, i) {
        var span = panes.querySelector('[data-reveal="' + i + '"]');
        span.textContent = "· ";
        var strong = document.createElement("strong");
        strong.textContent = name;
        span.appendChild(strong);
      });
      panes.querySelectorAll(".stats").forEach(function (dl) { dl.hidden = false; });
      result.textContent = "Vote stored (" + WORDS[data.winner] + "). A was " + data.model_a +
        ", B was " + data.model_b + ".";
      result.setAttribute("tabindex", "-1");
      result.focus();  // the vote buttons are disabled now: keep the keyboard user's place
    }

    form.addEventListener("submit", start);
    voteBox.querySelectorAll("[data-winner]").forEach(function (button) {
      button.addEventListener("click", function () { vote(button.getAttribute("data-winner")); });
    });
    var initial = document.getElementById("arena-board-data");
    if (initial) window.maBoard.chart(JSON.parse(initial.textContent));
  }

  window.maBattle = { wire: wire };
})();
