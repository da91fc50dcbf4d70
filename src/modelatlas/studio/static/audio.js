// The playground's audio mode: choose a file (or drop one, or record in the browser), send it to
// the chosen speech models and show their transcripts side by side with latency and cost.
(function () {
  "use strict";

  var form = document.getElementById("audio-form");
  if (!form) return;
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);
  var maxMb = form.getAttribute("data-max-mb");
  var fileInput = document.getElementById("au-file");
  var drop = document.getElementById("au-drop");
  var recordButton = document.getElementById("au-record");
  var recordNote = document.getElementById("au-record-note");
  var chosenBox = document.getElementById("au-chosen");
  var chosenName = document.getElementById("au-chosen-name");
  var preview = document.getElementById("au-preview");
  var results = document.getElementById("au-results");
  var status = document.getElementById("au-status");
  var errorBox = document.getElementById("au-error");
  var runButton = document.getElementById("au-run");
  var current = null; // {blob, name}: the audio to send
  var recorder = null;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function size(bytes) {
    return bytes < 1024 * 1024 ? Math.max(1, Math.round(bytes / 1024)) + " KB" : (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  // Take `blob` as the audio to send, or refuse it with a message saying why.
  function choose(blob, name) {
    showError("");
    if (blob.type && blob.type.indexOf("audio/") !== 0 && blob.type.indexOf("video/") !== 0) {
      showError(name + " is not an audio file (" + blob.type + "). Choose a wav, mp3, ogg, flac or webm file.");
      return;
    }
    if (blob.size > maxBytes) {
      showError("The audio is " + size(blob.size) + "; the playground takes at most " + maxMb + " MB. Use a shorter or compressed clip.");
      return;
    }
    if (!blob.size) { showError(name + " is empty."); return; }
    if (preview.src) URL.revokeObjectURL(preview.src);
    current = { blob: blob, name: name };
    preview.src = URL.createObjectURL(blob);
    chosenName.textContent = "Chosen: " + name + " (" + size(blob.size) + ")";
    chosenBox.hidden = false;
  }

  fileInput.addEventListener("change", function () {
    if (fileInput.files.length) choose(fileInput.files[0], fileInput.files[0].name);
  });

  function dropZone() {
    ["dragenter", "dragover"].forEach(function (name) {
      drop.addEventListener(name, function (event) { event.preventDefault(); drop.classList.add("over"); });
    });
    drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      drop.classList.remove("over");
      var files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) choose(files[0], files[0].name);
    });
  }

  // Recording needs getUserMedia, which browsers give only to secure pages (https, localhost).
  function recording() {
    var media = navigator.mediaDevices;
    if (!media || !media.getUserMedia || !window.MediaRecorder) {
      recordButton.disabled = true;
      recordNote.textContent = window.isSecureContext
        ? "This browser cannot record audio here. Upload a file instead."
        : "Recording works only when the studio is opened at localhost or 127.0.0.1, or over https. Upload a file instead.";
      recordNote.hidden = false;
      return;
    }
    recordButton.addEventListener("click", function () {
      if (recorder) { recorder.stop(); return; }
      showError("");
      media.getUserMedia({ audio: true }).then(start, function (err) {
        showError("The browser could not record (" + err.message + "). Allow the microphone, or upload a file.");
      });
    });
  }

  function start(stream) {
    var pieces = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", function (event) { if (event.data.size) pieces.push(event.data); });
    recorder.addEventListener("stop", function () {
      stream.getTracks().forEach(function (track) { track.stop(); });
      var type = recorder.mimeType || "audio/webm";
      var extension = type.indexOf("mp4") >= 0 ? "m4a" : type.indexOf("ogg") >= 0 ? "ogg" : "webm";
      recorder = null;
      recordButton.textContent = "Record";
      recordButton.setAttribute("aria-pressed", "false");
      status.textContent = "Recording stopped.";
      choose(new Blob(pieces, { type: type }), "recording." + extension);
    });
    recorder.start();
    recordButton.textContent = "Stop recording";
    recordButton.setAttribute("aria-pressed", "true");
    status.textContent = "Recording… press Stop recording when done.";
  }

  var STATS = [
    ["latency_s", "Latency"],
    ["real_time_factor", "Real-time factor"],
    ["duration_s", "Audio"],
    ["language", "Language"],
    ["cost_usd", "Cost"]
  ];

  function usd(value) {
    return window.maUsd(value); // studio.js: the one money format
  }

  function formatStat(name, r) {
    var value = r[name];
    if (value == null) return "–";
    if (name === "latency_s") return value.toFixed(2) + " s";
    if (name === "real_time_factor") return value.toFixed(2);
    if (name === "duration_s") return value.toFixed(1) + " s";
    if (name === "cost_usd") return usd(value);
    return String(value);
  }

  function makePane(index, title) {
    var pane = document.createElement("section");
    pane.className = "pane waiting";
    pane.setAttribute("data-index", String(index));
    pane.setAttribute("aria-labelledby", "au-title-" + index);
    var heading = document.createElement("h2");
    heading.id = "au-title-" + index;
    heading.className = "pane-title";
    heading.textContent = title;
    var text = document.createElement("p");
    text.className = "answer transcript";
    text.textContent = "Transcribing…";
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
    pane.appendChild(text);
    pane.appendChild(stats);
    return pane;
  }

  function fill(result) {
    var pane = results.querySelector('.pane[data-index="' + result.index + '"]');
    if (!pane) return;
    pane.classList.remove("waiting");
    pane.classList.add("finished");
    var text = pane.querySelector(".transcript");
    if (result.error) {
      pane.classList.add("failed");
      text.className = "error";
      text.textContent = result.error;
      pane.querySelectorAll("[data-stat]").forEach(function (dd) { dd.textContent = "–"; });
      return;
    }
    text.textContent = result.text || "(no speech heard)";
    STATS.forEach(function (pair) {
      pane.querySelector('[data-stat="' + pair[0] + '"]').textContent = formatStat(pair[0], result);
    });
  }

  function readDataUrl(blob) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onload = function () { resolve(reader.result); };
      reader.onerror = function () { reject(new Error("The browser could not read the audio.")); };
      reader.readAsDataURL(blob);
    });
  }

  function post(body) {
    return fetch("/api/playground/transcribe", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || "The studio answered " + response.status);
        return data;
      }, function () { throw new Error("The studio answered " + response.status); });
    });
  }

  function chosenModels() {
    var picked = [];
    form.querySelectorAll("select[name=model]").forEach(function (select) {
      if (select.value) picked.push(select.value);
    });
    return picked;
  }

  function run(event) {
    event.preventDefault();
    showError("");
    var models = chosenModels();
    if (!models.length) { showError("Pick at least one model."); return; }
    if (!current) { showError("Choose or record some audio first."); fileInput.focus(); return; }
    results.textContent = "";
    results.className = "panes panes-" + models.length;
    models.forEach(function (id, i) { results.appendChild(makePane(i, id)); });
    var started = performance.now();
    runButton.disabled = true;
    results.setAttribute("aria-busy", "true");
    status.textContent = "Transcribing with " + models.length + " model(s)…";
    readDataUrl(current.blob).then(function (url) {
      return post({ models: models, audio: url, filename: current.name, language: form.elements.language.value || null });
    }).then(function (data) {
      data.results.forEach(fill);
      status.textContent = "Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s.";
    }, function (err) {
      results.textContent = "";
      status.textContent = "";
      showError(err.message);
    }).then(function () {
      runButton.disabled = false;
      results.setAttribute("aria-busy", "false");
    });
  }

  dropZone();
  recording();
  form.addEventListener("submit", run);
})();
