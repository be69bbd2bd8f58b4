/* The period-end pages: live progress of a run job, printing (charts: charts.js).
   Plain JavaScript, no network but this site. */
(function () {
  "use strict";

  function followJob(box) {
    var bar = document.getElementById("job-bar");
    var count = document.getElementById("job-count");
    var status = document.getElementById("job-status");

    function show(state) {
      bar.style.width = state.percent + "%";
      bar.setAttribute("aria-valuenow", state.percent);
      bar.textContent = state.percent + "%";
      status.textContent = state.status_label;
      status.className = "badge badge-" + ({done: "success", failed: "danger", running: "info"}[state.status] || "secondary");
      count.textContent = state.total
        ? box.dataset.progress.replace("{done}", state.done.toLocaleString()).replace("{total}", state.total.toLocaleString())
        : box.dataset.waiting;
      var work = document.getElementById("job-work");
      if (work && state.chunks) {
        var text = work.dataset.template.replace("{done}", state.chunks_done)
          .replace("{chunks}", state.chunks).replace("{redone}", state.chunks_redone)
          .replace("{workers}", state.workers.length ? state.workers.join(", ") : "-");
        if (state.seconds_left !== null && !state.finished) {
          text += " · " + work.dataset.left.replace("{minutes}", Math.max(1, Math.round(state.seconds_left / 60)));
        }
        work.textContent = text;
      }
      var stalled = document.getElementById("job-stalled");
      if (stalled) {
        stalled.textContent = state.stalled || "";
        stalled.classList.toggle("d-none", !state.stalled);
      }
      if (state.finished) {
        bar.classList.remove("progress-bar-striped", "progress-bar-animated");
        var cancel = document.getElementById("job-cancel");
        if (cancel) { cancel.classList.add("d-none"); }
      }
      if (state.status === "done") {
        bar.classList.add("bg-success");
        document.getElementById("job-run-link").href = state.run_url;
        document.getElementById("job-done").classList.remove("d-none");
      } else if (state.status === "failed" || state.status === "cancelled") {
        bar.classList.add("bg-danger");
        document.getElementById("job-error").textContent = state.error || "";
        document.getElementById("job-failed").classList.remove("d-none");
      }
    }

    function poll() {
      fetch(box.dataset.url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (state) {
          show(state);
          if (!state.finished) { setTimeout(poll, 1000); }
        })
        .catch(function () { setTimeout(poll, 2000); });
    }
    poll();
  }

  function openAll(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("job");
    if (box) { followJob(box); }
    document.querySelectorAll("[data-action=print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    document.querySelectorAll("[data-action=toggle-details]").forEach(function (b) {
      var open = false;
      b.addEventListener("click", function () { open = !open; openAll(open); });
    });
    // The what-if's period: another one reloads the page with its recorded figures (the
    // grey ones), what was typed kept in the address; nothing is estimated until asked.
    document.querySelectorAll("select[data-reload]").forEach(function (select) {
      select.addEventListener("change", function () {
        var query = new URLSearchParams();
        select.form.querySelectorAll("input[type=text]").forEach(function (input) {
          if (input.value) { query.set(input.name, input.value); }
        });
        query.set(select.name, select.value);
        window.location.assign(window.location.pathname + "?" + query.toString());
      });
    });
    // A printed statement shows every explanation, whatever was open on screen.
    var wasOpen = [];
    window.addEventListener("beforeprint", function () {
      wasOpen = Array.prototype.map.call(document.querySelectorAll("details"), function (d) { return d.open; });
      openAll(true);
    });
    window.addEventListener("afterprint", function () {
      document.querySelectorAll("details").forEach(function (d, i) { d.open = !!wasOpen[i]; });
    });
  });
})();
