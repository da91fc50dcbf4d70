// A job's page: poll /api/jobs/ID until the job is done or failed, and show its progress.
(function () {
  "use strict";

  var box = document.querySelector("[data-job]");
  if (!box) return;
  var id = box.getAttribute("data-job");

  function field(name) { return box.querySelector('[data-field="' + name + '"]'); }

  function show(job) {
    box.setAttribute("data-status", job.status);
    field("status").textContent = job.status;
    field("progress").textContent = job.done + " of " + (job.total || "?") + " answers";
    var bar = box.querySelector("progress");
    bar.max = job.total || 1;
    bar.value = job.done;
    bar.textContent = job.done + " of " + job.total;
    if (job.run_id) {
      var link = field("run").querySelector("a");
      link.href = job.run_url;
      link.textContent = job.run_id;
      field("run").hidden = false;
    }
    field("error").textContent = job.error || "";
    field("error").hidden = !job.error;
  }

  function poll() {
    fetch("/api/jobs/" + encodeURIComponent(id), { cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (job) {
        if (!job) return;
        show(job);
        if (job.status !== "done" && job.status !== "failed") setTimeout(poll, 1000);
      }, function () { setTimeout(poll, 3000); });
  }

  var status = box.getAttribute("data-status");
  if (status !== "done" && status !== "failed") setTimeout(poll, 500);
})();
